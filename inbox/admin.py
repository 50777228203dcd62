"""Canned replies in the Django admin: a shortcut for text, a library medium or a news template."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from inbox.models import CannedReply

# A canned reply of each kind may reference only the matching thing (§8.3:
# an image reply needs image media, and so on).
MEDIA_KINDS = {CannedReply.Kind.IMAGE, CannedReply.Kind.VOICE, CannedReply.Kind.VIDEO}


class CannedReplyForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["account", "shortcut", "title", "kind", "text", "media", "news"]
        help_texts = {
            "shortcut": _("客服在输入框键入 /快捷短语 即可插入，例如 /hours。只能用字母、数字、- 和 _。"),
            "text": _("类型为“文本”时必填，最多 2048 字节。"),
            "media": _("类型为图片、语音或视频时必填，须为同类型的素材。"),
            "news": _("类型为“图文”时必填。"),
        }

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        text = (cleaned.get("text") or "").strip()
        media, news, account = cleaned.get("media"), cleaned.get("news"), cleaned.get("account")
        if kind == CannedReply.Kind.TEXT:
            if not text:
                self.add_error("text", _("文本类型的快捷回复需要填写文本。"))
            elif len(text.encode("utf-8")) > 2048:
                # §2.4: longer text is refused with 45002.
                self.add_error("text", _("文本超过 2048 字节，微信会拒绝发送（45002）。"))
            if media or news:
                self.add_error("kind", _("文本类型的快捷回复不能引用素材或图文模板。"))
        elif kind in MEDIA_KINDS:
            if media is None:
                self.add_error("media", _("请选择一个素材。"))
            elif media.kind != kind:
                self.add_error(
                    "media",
                    _("所选素材是“%(actual)s”，与快捷回复类型“%(expected)s”不一致。")
                    % {"actual": media.get_kind_display(), "expected": CannedReply.Kind(kind).label},
                )
            if news:
                self.add_error("news", _("素材类型的快捷回复不能同时引用图文模板。"))
        elif kind == CannedReply.Kind.NEWS:
            if news is None:
                self.add_error("news", _("请选择一个图文模板。"))
            if media:
                self.add_error("media", _("图文类型的快捷回复不能同时引用素材。"))
        if account is not None:
            if media is not None and media.account_id != account.pk:
                self.add_error("media", _("素材属于另一个公众号（media_id 只在上传它的公众号里有效）。"))
            if news is not None and news.account_id not in (None, account.pk):
                self.add_error("news", _("图文模板属于另一个公众号。"))
        elif media is not None:
            # A reply for every account cannot carry one account's media_id.
            self.add_error("account", _("引用素材的快捷回复必须指定公众号（media_id 只在上传它的公众号里有效）。"))
        if kind != CannedReply.Kind.TEXT:
            cleaned["text"] = text
        return cleaned

    def validate_unique(self):
        super().validate_unique()
        # The database constraint treats NULL accounts as distinct; two
        # "all accounts" replies with one shortcut would still collide in the composer.
        shortcut, account = self.cleaned_data.get("shortcut"), self.cleaned_data.get("account")
        if shortcut and account is None:
            clash = CannedReply.objects.filter(account__isnull=True, shortcut=shortcut).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("shortcut", _("已有一个适用于所有公众号的同名快捷短语。"))


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    form = CannedReplyForm
    list_display = ("shortcut", "title", "kind", "account", "media", "news")
    list_filter = ("kind", "account")
    search_fields = ("shortcut", "title", "text")
    list_select_related = ("account", "media", "news")
