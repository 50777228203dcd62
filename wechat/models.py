"""The WeChat side of the console: accounts, followers, what they sent, what we send.

Rules about one row live here; flows that cross models live in services
modules (`inbound.py`, `outbound.py`). Sections of ../shared/wechat-api.md are
cited where a field exists because of a WeChat rule.
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, DateTimeField, F, Q, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wechat import window


def mask_secret(value):
    """Show enough of a secret to recognise it, never the whole of it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * len(value)
    return f"{value[:3]}…{value[-2:]}"


class OfficialAccount(models.Model):
    class TokenMode(models.TextChoices):
        STABLE = "stable", _("stable_token（推荐）")
        CLASSIC = "classic", _("经典 /cgi-bin/token")

    class CryptoMode(models.TextChoices):
        PLAIN = "plain", _("明文模式")
        COMPATIBLE = "compatible", _("兼容模式")
        SAFE = "safe", _("安全模式")

    appid = models.CharField(_("AppID"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=64, blank=True)
    original_id = models.CharField(_("原始 ID"), max_length=32, blank=True, help_text="gh_…")
    app_secret = models.CharField(_("AppSecret"), max_length=128, blank=True)
    token = models.CharField(_("Token"), max_length=64)
    encoding_aes_key = models.CharField(_("EncodingAESKey"), max_length=43, blank=True)
    previous_encoding_aes_key = models.CharField(_("上一个 EncodingAESKey"), max_length=43, blank=True)
    crypto_mode = models.CharField(
        _("消息加解密方式"), max_length=16, choices=CryptoMode.choices, default=CryptoMode.PLAIN
    )
    token_mode = models.CharField(
        _("access_token 获取方式"), max_length=16, choices=TokenMode.choices, default=TokenMode.STABLE
    )
    is_active = models.BooleanField(_("启用"), default=True)
    # Agents who work this account; supervisors and admins see every account.
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="official_accounts", verbose_name=_("客服")
    )
    duplicate_pushes = models.PositiveBigIntegerField(_("重复推送次数"), default=0)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("公众号")
        verbose_name_plural = _("公众号")
        ordering = ["appid"]

    def __str__(self):
        return self.name or self.appid

    @property
    def masked_secret(self):
        return mask_secret(self.app_secret)

    @property
    def aes_keys(self):
        """Keys to try on decrypt, current first (§7.1 key rotation)."""
        return [k for k in (self.encoding_aes_key, self.previous_encoding_aes_key) if k]


class AccessToken(models.Model):
    """The one shared access token of an account (§1): workers only read it."""

    account = models.OneToOneField(OfficialAccount, on_delete=models.CASCADE, related_name="access_token")
    value = models.CharField(max_length=1024, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    fetch_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("access_token")
        verbose_name_plural = _("access_token")

    def __str__(self):
        return f"token for {self.account_id} (expires {self.expires_at})"


def _grant_end(prefix):
    """`<prefix>_expires_at` while the grant has quota left, else NULL (no clock)."""
    quota, used = f"{prefix}_quota", f"{prefix}_used"
    return Case(
        When(Q(**{f"{quota}__isnull": True}) | Q(**{f"{used}__lt": F(quota)}), then=F(f"{prefix}_expires_at")),
        default=None,
        output_field=DateTimeField(),
    )


def window_end_expression():
    """When the follower's reply window ends if nobody's clock moves: SQL, as in `wechat.window.check`.

    The later end of the grants that still have quota; NULL when unsubscribed,
    never opened or every grant's quota is used. The window is open at `now`
    exactly when this is later than `now` (the later grant is the one still
    running), so "closing soonest" is `window_ends_at > now ORDER BY
    window_ends_at`, which an index serves. No clock inside, so the database
    computes it as a stored column (`Contact.window_ends_at`) and every writer,
    `save()` or raw UPDATE, keeps it right. GREATEST ignores NULLs on
    PostgreSQL but not on SQLite, hence the Coalesce pairs.
    """
    short, long = _grant_end("short"), _grant_end("long")
    return Case(
        When(subscribed=True, then=Greatest(Coalesce(short, long), Coalesce(long, short))),
        default=None,
        output_field=DateTimeField(),
    )


class Contact(models.Model):
    """A follower of one account, with their reply window (§3)."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="contacts")
    openid = models.CharField(_("OpenID"), max_length=64)
    remark = models.CharField(_("备注"), max_length=64, blank=True)
    display_name = models.CharField(_("显示名"), max_length=64, blank=True)
    subscribed = models.BooleanField(_("已关注"), default=True)
    subscribed_at = models.DateTimeField(_("关注时间"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("取关时间"), null=True, blank=True)
    first_seen_at = models.DateTimeField(_("首次互动"), default=timezone.now)
    last_inbound_at = models.DateTimeField(_("最近互动"), null=True, blank=True)

    # Window state: the long grant (a message: 5 sends / 48 h) and the short
    # grant (click / scan / follow: 3 sends / 1 min) coexist (§3.1).
    long_opened_by = models.CharField(max_length=32, blank=True)
    long_opened_at = models.DateTimeField(null=True, blank=True)
    long_expires_at = models.DateTimeField(null=True, blank=True)
    long_quota = models.PositiveSmallIntegerField(null=True, blank=True)
    long_used = models.PositiveSmallIntegerField(default=0)
    short_opened_by = models.CharField(max_length=32, blank=True)
    short_opened_at = models.DateTimeField(null=True, blank=True)
    short_expires_at = models.DateTimeField(null=True, blank=True)
    short_quota = models.PositiveSmallIntegerField(null=True, blank=True)
    short_used = models.PositiveSmallIntegerField(default=0)
    # When a Typing indicator was last requested: at most one per 15 s (§4).
    typing_sent_at = models.DateTimeField(null=True, blank=True)
    # Computed by the database from the fields above (see window_end_expression):
    # the list's "window closing soonest" sort reads it through its index.
    # An instance's value is as of when it was read: `save()` does not refresh it.
    window_ends_at = models.GeneratedField(
        expression=window_end_expression(), output_field=models.DateTimeField(null=True), db_persist=True
    )

    class Meta:
        verbose_name = _("粉丝")
        verbose_name_plural = _("粉丝")
        constraints = [
            models.UniqueConstraint(fields=["account", "openid"], name="contact_unique_openid"),
        ]
        indexes = [
            models.Index(fields=["account", "-last_inbound_at"]),
            models.Index(fields=["window_ends_at"], name="contact_window_ends_at"),
        ]

    def __str__(self):
        return self.remark or self.display_name or self.openid

    @property
    def label(self):
        return str(self)

    def window_state(self):
        return window.WindowState(
            subscribed=self.subscribed,
            long=window.grant_from_fields(
                self.long_opened_by,
                self.long_opened_at,
                self.long_expires_at,
                self.long_quota,
                self.long_used,
            ),
            short=window.grant_from_fields(
                self.short_opened_by,
                self.short_opened_at,
                self.short_expires_at,
                self.short_quota,
                self.short_used,
            ),
        )

    def set_window_state(self, state):
        """Copy a WindowState back onto the row (the caller saves)."""
        for prefix, grant in (("long", state.long), ("short", state.short)):
            fields = window.grant_to_fields(grant)
            for name, value in fields.items():
                setattr(self, f"{prefix}_{name}", value)
        self.subscribed = state.subscribed

    WINDOW_FIELDS = [
        f"{p}_{n}" for p in ("long", "short") for n in ("opened_by", "opened_at", "expires_at", "quota", "used")
    ] + ["subscribed"]


class Conversation(models.Model):
    """One thread of service with one follower; agents work on these."""

    class Status(models.TextChoices):
        OPEN = "open", _("处理中")
        PENDING = "pending", _("待回复")
        RESOLVED = "resolved", _("已解决")
        SNOOZED = "snoozed", _("已暂缓")

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        verbose_name=_("负责人"),
    )
    snoozed_until = models.DateTimeField(_("暂缓至"), null=True, blank=True)
    # Oldest inbound message not yet answered; null when the agent spoke last.
    waiting_since = models.DateTimeField(_("等待开始"), null=True, blank=True)
    first_inbound_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(_("最近消息"), default=timezone.now)
    last_message_preview = models.CharField(max_length=140, blank=True)
    last_message_direction = models.CharField(max_length=3, blank=True)  # "in" / "out"
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("会话")
        verbose_name_plural = _("会话")
        indexes = [
            models.Index(fields=["account", "status", "-last_message_at"]),
            models.Index(fields=["assignee", "status", "-last_message_at"]),
            models.Index(fields=["status", "waiting_since"]),
            models.Index(fields=["contact", "-created_at"]),
        ]
        constraints = [
            # At most one conversation per follower that is not resolved.
            models.UniqueConstraint(
                fields=["contact"], condition=~Q(status="resolved"), name="one_live_conversation_per_contact"
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.contact}"


class InboundMessage(models.Model):
    """Every push a follower caused: a message (§6.3) or an event (§6.4)."""

    class MediaStatus(models.TextChoices):
        NONE = "", _("无")
        PENDING = "pending", _("待下载")
        FETCHED = "fetched", _("已保存")
        FAILED = "failed", _("下载失败")

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="inbound")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="inbound")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound"
    )
    msg_type = models.CharField(max_length=32)
    event = models.CharField(max_length=64, blank=True)
    # 64-bit ids may exceed a signed BIGINT; keep them as text (§6.2).
    msg_id = models.CharField(max_length=32, null=True, blank=True)
    from_user = models.CharField(max_length=64)
    to_user = models.CharField(max_length=64, blank=True)
    create_time = models.BigIntegerField()
    sent_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    content = models.TextField(blank=True)  # text, recognition, link title… for search and preview
    data = models.JSONField(default=dict)  # the typed fields of the push
    raw_xml = models.TextField(blank=True)
    media_id = models.CharField(max_length=256, blank=True)
    media_file = models.FileField(upload_to="inbound/%Y/%m/%d/", blank=True)
    media_content_type = models.CharField(max_length=100, blank=True)
    media_status = models.CharField(max_length=16, choices=MediaStatus.choices, default="", blank=True)
    media_error = models.CharField(max_length=255, blank=True)
    media_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("收到的消息")
        verbose_name_plural = _("收到的消息")
        constraints = [
            # Retried pushes are dropped by the database, not by a lookup (§6.5).
            models.UniqueConstraint(
                fields=["account", "msg_id"], condition=Q(msg_id__isnull=False), name="inbound_unique_msgid"
            ),
            models.UniqueConstraint(
                fields=["account", "from_user", "create_time", "event"],
                condition=Q(msg_id__isnull=True),
                name="inbound_unique_event",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "id"]),
            models.Index(fields=["contact", "-id"]),
            models.Index(fields=["media_status"]),
        ]

    def __str__(self):
        return f"{self.msg_type}{'/' + self.event if self.event else ''} from {self.from_user}"

    @property
    def is_event(self):
        return self.msg_type == "event"


class OutboundMessage(models.Model):
    """The durable ledger of customer-service messages (§2); it decides what was sent."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("失败")
        UNKNOWN = "unknown", _("结果未知")
        CANCELLED = "cancelled", _("已取消")

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="outbound")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="outbound")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbound"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbound"
    )
    msgtype = models.CharField(max_length=32)
    payload = models.JSONField()  # the whole request body of §2.2, touser included
    preview = models.CharField(max_length=140, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    send_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=128, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_errcode = models.IntegerField(null=True, blank=True)
    last_errmsg = models.CharField(max_length=512, blank=True)
    reason = models.CharField(_("原因"), max_length=255, blank=True)
    rid = models.CharField(max_length=64, blank=True)
    # Which window grant this send reserved a unit of, so a failed or
    # cancelled send can give it back to the same grant (§3).
    grant_kind = models.CharField(max_length=8, blank=True)
    grant_opened_at = models.DateTimeField(null=True, blank=True)
    resend_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")

    class Meta:
        verbose_name = _("发出的消息")
        verbose_name_plural = _("发出的消息")
        indexes = [
            models.Index(fields=["status", "send_at"]),
            models.Index(fields=["contact", "status", "id"]),
            models.Index(fields=["conversation", "id"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["-created_at"]),
        ]

    def __str__(self):
        return f"{self.msgtype} to {self.contact_id} [{self.status}]"

    @property
    def holds_quota(self):
        """Queued, in flight, sent or unknown sends use a unit of the window quota."""
        return self.status not in (self.Status.FAILED, self.Status.CANCELLED)

    @property
    def can_cancel(self):
        return self.status == self.Status.QUEUED

    @property
    def can_resend(self):
        return self.status in (self.Status.FAILED, self.Status.UNKNOWN)


class SendLog(models.Model):
    """One row per HTTP attempt against the WeChat API (§10)."""

    outbound = models.ForeignKey(OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    account = models.ForeignKey(OfficialAccount, null=True, blank=True, on_delete=models.SET_NULL)
    endpoint = models.CharField(max_length=512)  # redacted: never the token
    request_body = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    errcode = models.IntegerField(null=True, blank=True)
    errmsg = models.CharField(max_length=512, blank=True)
    rid = models.CharField(max_length=64, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    worker = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("发送日志")
        verbose_name_plural = _("发送日志")
        indexes = [models.Index(fields=["errcode", "-created_at"])]

    def __str__(self):
        # The path only: a query string is where a token would be (§1).
        return f"{self.endpoint.split('?', 1)[0]} → {self.errcode}"


class MediaAsset(models.Model):
    """A file in the media library and its WeChat media_id (§8)."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("图片")
        VOICE = "voice", _("语音")
        VIDEO = "video", _("视频")
        THUMB = "thumb", _("缩略图")

    class Lifetime(models.TextChoices):
        TEMPORARY = "temporary", _("临时素材（3 天）")
        PERMANENT = "permanent", _("永久素材")

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="media")
    title = models.CharField(_("标题"), max_length=64)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices)
    lifetime = models.CharField(_("有效期"), max_length=12, choices=Lifetime.choices, default=Lifetime.TEMPORARY)
    description = models.CharField(_("简介"), max_length=255, blank=True)
    file = models.FileField(_("文件"), upload_to="library/%Y/%m/")
    size = models.PositiveIntegerField(_("大小（字节）"), default=0)
    media_id = models.CharField(_("media_id"), max_length=256, blank=True)
    url = models.URLField(_("URL"), max_length=512, blank=True)
    uploaded_at = models.DateTimeField(_("上传时间"), null=True, blank=True)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    last_error = models.CharField(_("最近错误"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("素材")
        verbose_name_plural = _("素材库")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.title} ({self.get_kind_display()})"

    def is_expired(self, now=None):
        now = now or timezone.now()
        return self.expires_at is not None and self.expires_at <= now


class NewsTemplate(models.Model):
    """A single-article news card (§2.2 `news`: exactly one article)."""

    account = models.ForeignKey(
        OfficialAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="news_templates"
    )
    name = models.CharField(_("名称"), max_length=64)
    title = models.CharField(_("标题"), max_length=64)
    description = models.CharField(_("描述"), max_length=255, blank=True)
    url = models.URLField(_("链接"), max_length=512)
    picurl = models.URLField(_("图片链接"), max_length=512, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("图文模板")
        verbose_name_plural = _("图文模板")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def article(self):
        return {"title": self.title, "description": self.description, "url": self.url, "picurl": self.picurl}


class LiveUpdate(models.Model):
    """Append-only feed of what agents must see; the browser catches up from its last id.

    Written in the same transaction as the change it describes and published
    on the channel layer after commit (write, then push).
    """

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "id"])]

    def __str__(self):
        return f"{self.kind} #{self.pk}"


class AuditLog(models.Model):
    """Who did what, when: assignments, resolves, resends, admin changes."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(_("操作"), max_length=64)
    object_type = models.CharField(_("对象类型"), max_length=64, blank=True)
    object_id = models.CharField(_("对象 ID"), max_length=64, blank=True)
    summary = models.CharField(_("摘要"), max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("审计日志")
        verbose_name_plural = _("审计日志")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.summary}"
