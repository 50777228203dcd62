"""What only the agents' console needs: notes and activity, read markers, canned replies."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wechat.models import Conversation, MediaAsset, NewsTemplate, OfficialAccount


class Activity(models.Model):
    """A private note or a change of hands, shown in the conversation timeline."""

    class Kind(models.TextChoices):
        NOTE = "note", _("备注")
        ASSIGNED = "assigned", _("分配")
        UNASSIGNED = "unassigned", _("取消分配")
        RESOLVED = "resolved", _("已解决")
        REOPENED = "reopened", _("重新打开")
        SNOOZED = "snoozed", _("暂缓")
        PENDING = "pending", _("待回复")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField(blank=True)
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("会话动态")
        verbose_name_plural = _("会话动态")
        indexes = [models.Index(fields=["conversation", "id"])]

    def __str__(self):
        return f"{self.kind} on {self.conversation_id}"


class ReadMarker(models.Model):
    """The last inbound message an agent has seen in a conversation (unread counts)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_markers")
    last_read_inbound_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="one_marker_per_user")]

    def __str__(self):
        return f"{self.user_id} read {self.conversation_id} to {self.last_read_inbound_id}"


class CannedReply(models.Model):
    """A reply an agent inserts by shortcut: text, a library medium or a news template."""

    class Kind(models.TextChoices):
        TEXT = "text", _("文本")
        IMAGE = "image", _("图片")
        VOICE = "voice", _("语音")
        VIDEO = "video", _("视频")
        NEWS = "news", _("图文")

    account = models.ForeignKey(
        OfficialAccount,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="canned_replies",
        help_text=_("留空则所有公众号可用"),
    )
    shortcut = models.SlugField(_("快捷短语"), max_length=32)
    title = models.CharField(_("标题"), max_length=64)
    kind = models.CharField(_("类型"), max_length=8, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(_("文本"), blank=True)
    media = models.ForeignKey(MediaAsset, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("素材"))
    news = models.ForeignKey(NewsTemplate, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("图文"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("快捷回复")
        verbose_name_plural = _("快捷回复")
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(fields=["account", "shortcut"], name="unique_shortcut_per_account"),
        ]

    def __str__(self):
        return f"/{self.shortcut} {self.title}"


class Presence(models.Model):
    """Who has a conversation open, and who is typing in it: short-lived by design.

    One row per browser socket and conversation, so two tabs of one agent do
    not cancel each other. Rows expire on their own (a crashed socket never
    says goodbye); readers ignore expired rows and writers sweep them.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200)
    viewing_until = models.DateTimeField()
    typing_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel_name", "conversation"], name="one_presence_per_socket"),
        ]
        indexes = [models.Index(fields=["conversation", "viewing_until"])]

    def __str__(self):
        return f"{self.user_id} on {self.conversation_id} until {self.viewing_until}"
