"""WeChat's own view of the world, as the sandbox platform keeps it.

These rows are the fake platform's state, independent of the console's tables:
the tokens it issued (§1), each follower as WeChat sees them — followed or not,
their reply window (§3), their typing state (§4) — the media it stores (§8),
the customer-service messages it delivered (§2), the pushes it sent to the
console's webhook (§6), the faults waiting to be injected and a record of every
API call. Apps known to the platform are the console's `OfficialAccount` rows
(appid + app_secret), exactly as the real platform knows the registered apps.
"""

import json

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wechat import window
from wechat.models import OfficialAccount


class SandboxToken(models.Model):
    """An access token the platform issued (§1.1 classic, §1.2 stable)."""

    class Kind(models.TextChoices):
        CLASSIC = "classic", "经典 /cgi-bin/token"
        STABLE = "stable", "stable_token"

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=512, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Set when a newer token replaced this one: it keeps working until then
    # (the overlap of §1.1), after which calls with it get 40001.
    valid_until = models.DateTimeField(null=True, blank=True)
    forced = models.BooleanField(default=False)  # a stable token from force_refresh=true

    class Meta:
        indexes = [models.Index(fields=["account", "kind", "-issued_at"])]

    def __str__(self):
        return f"{self.kind} token #{self.pk} of {self.account_id}"


class SandboxFollower(models.Model):
    """One follower as WeChat sees them, with WeChat's record of the reply window."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    openid = models.CharField(max_length=64)
    nickname = models.CharField("昵称", max_length=64, blank=True)
    subscribed = models.BooleanField(default=False)
    subscribe_time = models.DateTimeField(null=True, blank=True)
    unsubscribe_time = models.DateTimeField(null=True, blank=True)
    subscribe_scene = models.CharField(max_length=64, blank=True)
    qr_scene = models.CharField(max_length=64, blank=True)
    # The window book: same shape as Contact's, kept by the platform (§3).
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
    # Typing is allowed only after an exchange in the last 30 s (§4).
    last_exchange_at = models.DateTimeField(null=True, blank=True)
    typing_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "openid"], name="sandbox_follower_unique_openid"),
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return self.nickname or self.openid

    def window_state(self):
        return window.WindowState(
            subscribed=self.subscribed,
            long=window.grant_from_fields(
                self.long_opened_by, self.long_opened_at, self.long_expires_at, self.long_quota, self.long_used
            ),
            short=window.grant_from_fields(
                self.short_opened_by, self.short_opened_at, self.short_expires_at, self.short_quota, self.short_used
            ),
        )

    def set_window_state(self, state):
        for prefix, grant in (("long", state.long), ("short", state.short)):
            for name, value in window.grant_to_fields(grant).items():
                setattr(self, f"{prefix}_{name}", value)
        self.subscribed = state.subscribed

    WINDOW_FIELDS = [
        f"{p}_{n}" for p in ("long", "short") for n in ("opened_by", "opened_at", "expires_at", "quota", "used")
    ] + ["subscribed"]


class SandboxMedia(models.Model):
    """A file the platform stores under a media_id (§8)."""

    class Kind(models.TextChoices):
        IMAGE = "image", "图片"
        VOICE = "voice", "语音"
        VIDEO = "video", "视频"
        THUMB = "thumb", "缩略图"

    class Lifetime(models.TextChoices):
        TEMPORARY = "temporary", "临时素材"
        PERMANENT = "permanent", "永久素材"

    class Origin(models.TextChoices):
        UPLOAD = "upload", "公众号上传"
        FOLLOWER = "follower", "粉丝发送"

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    media_id = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    lifetime = models.CharField(max_length=12, choices=Lifetime.choices, default=Lifetime.TEMPORARY)
    origin = models.CharField(max_length=12, choices=Origin.choices, default=Origin.UPLOAD)
    filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(default=0)
    # Kept in the database so that every process (console, worker, tests)
    # sees the same bytes without sharing a media folder.
    data = models.BinaryField()
    title = models.CharField(max_length=128, blank=True)
    introduction = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.kind} {self.media_id}"

    def is_expired(self, now):
        return self.expires_at is not None and self.expires_at <= now


class SandboxMessage(models.Model):
    """A customer-service message the platform accepted and delivered (§2)."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    follower = models.ForeignKey(SandboxFollower, on_delete=models.CASCADE, related_name="messages")
    openid = models.CharField(max_length=64)
    msgtype = models.CharField(max_length=32)
    payload = models.JSONField()  # the nested object under the msgtype key
    body = models.JSONField()  # the whole request body as parsed
    kf_account = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["follower", "id"])]

    def __str__(self):
        return f"{self.msgtype} to {self.openid}"


class SandboxPush(models.Model):
    """A follower action the platform pushed (or was asked to push) to the console (§6)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待推送")
        DELIVERED = "delivered", _("已送达")
        REFUSED = "refused", _("被拒绝")
        FAILED = "failed", _("推送失败")
        NOT_SENT = "not_sent", _("未推送")

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    follower = models.ForeignKey(SandboxFollower, on_delete=models.CASCADE, related_name="pushes")
    openid = models.CharField(max_length=64)
    action = models.CharField(max_length=32)
    msg_type = models.CharField(max_length=32)
    event = models.CharField(max_length=64, blank=True)
    msg_id = models.CharField(max_length=32, blank=True)
    fields = models.JSONField(default=dict)  # what the follower did, for the simulator's timeline
    xml = models.TextField()
    mode = models.CharField(max_length=12, blank=True)
    url = models.CharField(max_length=512, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["follower", "id"])]

    def __str__(self):
        return f"{self.action} from {self.openid} [{self.status}]"


class SandboxFault(models.Model):
    """A fault waiting to hit the next `remaining` matching API calls.

    Stored in the database so a test process can arm it for the console under
    uvicorn and the send worker in another process alike.
    """

    class Kind(models.TextChoices):
        LATENCY = "latency", _("增加延迟")
        BUSY = "busy", _("-1 系统繁忙")
        DAILY_QUOTA = "daily_quota", _("45009 接口调用超过每日限额")
        RATE_LIMIT = "rate_limit", _("45011 调用过于频繁")
        HTTP_ERROR = "http_error", _("HTTP 5xx")
        RESET = "reset", _("连接重置（不读取请求）")
        READ_TIMEOUT = "read_timeout", _("已接收后响应超时")
        TOKEN_EXPIRED = "token_expired", _("强制 access_token 过期（42001）")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Blank: every /cgi-bin/ endpoint; else an exact path like /cgi-bin/message/custom/send.
    endpoint = models.CharField(max_length=128, blank=True)
    account = models.ForeignKey(OfficialAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    remaining = models.PositiveIntegerField(default=1)
    delay_ms = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(default=503)
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        scope = self.endpoint or "*"
        return f"{self.kind} × {self.remaining} on {scope}"


class SandboxCall(models.Model):
    """Every request to the fake API and what it answered; secrets redacted."""

    account = models.ForeignKey(OfficialAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=256)  # e.g. /cgi-bin/message/custom/send
    query = models.CharField(max_length=1024, blank=True)  # access_token / secret redacted
    body = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    errcode = models.IntegerField(null=True, blank=True)
    errmsg = models.CharField(max_length=512, blank=True)
    response = models.TextField(blank=True)
    fault = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["path", "id"])]

    def __str__(self):
        return f"{self.method} {self.path} → {self.errcode}"

    @property
    def json(self):
        """The request body as JSON, for tests asserting exact payloads."""
        return json.loads(self.body) if self.body else None
