"""Admin forms: write-only secrets, media checked against §8 before upload, one-article news."""

from urllib.parse import parse_qs, urlsplit

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.utils.translation import gettext_lazy as _

from wechat import builders, crypto
from wechat.models import MediaAsset, NewsTemplate, OfficialAccount, mask_secret

# Form field → model field for every secret the admin may set but never read back.
SECRET_FIELDS = {
    "new_app_secret": "app_secret",
    "new_token": "token",
    "new_encoding_aes_key": "encoding_aes_key",
}


def _secret_input():
    # render_value=False: a secret never travels back to the browser, not even
    # after a validation error on another field.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class OfficialAccountForm(forms.ModelForm):
    new_app_secret = forms.CharField(label=_("AppSecret"), required=False, max_length=128, widget=_secret_input())
    new_token = forms.CharField(
        label=_("Token（服务器配置令牌）"), required=False, max_length=64, widget=_secret_input()
    )
    new_encoding_aes_key = forms.CharField(
        label=_("新的 EncodingAESKey"), required=False, max_length=43, widget=_secret_input()
    )
    clear_previous_key = forms.BooleanField(
        label=_("删除上一个 EncodingAESKey"),
        required=False,
        help_text=_("微信后台已确认使用新密钥、旧密钥加密的推送不会再来时勾选。"),
    )

    class Meta:
        model = OfficialAccount
        fields = ["appid", "name", "original_id", "crypto_mode", "token_mode", "is_active", "agents"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        keep = _("留空则保持当前值不变。")
        if instance.pk:
            self.fields["new_app_secret"].help_text = _current(instance.app_secret, keep)
            self.fields["new_token"].help_text = _current(instance.token, keep)
            self.fields["new_encoding_aes_key"].help_text = _(
                "当前：%(current)s；上一个：%(previous)s。填入新密钥即轮换：当前密钥成为“上一个”，"
                "旧密钥加密的推送仍可解密（§7.1）。%(keep)s"
            ) % {
                "current": mask_secret(instance.encoding_aes_key) or _("（未设置）"),
                "previous": mask_secret(instance.previous_encoding_aes_key) or _("（无）"),
                "keep": keep,
            }
        else:
            self.fields["new_token"].required = True
            self.fields["new_token"].help_text = _("与微信公众平台“服务器配置”中填写的 Token 一致。")
            self.fields["new_encoding_aes_key"].help_text = _("43 个字符，来自微信公众平台“服务器配置”。")
            del self.fields["clear_previous_key"]
        if "agents" in self.fields:
            self.fields["agents"].required = False

    def clean_new_encoding_aes_key(self):
        key = self.cleaned_data.get("new_encoding_aes_key", "").strip()
        if not key:
            return ""
        try:
            crypto.decode_key(key)
        except crypto.CryptoError:
            # Never echo the submitted key in the error.
            raise forms.ValidationError(
                _("EncodingAESKey 必须是 43 个字符的 Base64 文本（解码后 32 字节），请从微信公众平台复制完整。"),
                code="bad_key",
            ) from None
        return key

    def clean_new_app_secret(self):
        return self.cleaned_data.get("new_app_secret", "").strip()

    def clean_new_token(self):
        token = self.cleaned_data.get("new_token", "").strip()
        if token and (len(token) < 3 or any(ch.isspace() for ch in token)):
            # The token is one of the strings signed in §6.1; whitespace would be
            # lost when pasted into the platform's form.
            raise forms.ValidationError(_("Token 至少 3 个字符，且不能包含空格。"), code="bad_token")
        return token

    def clean(self):
        cleaned = super().clean()
        mode = cleaned.get("crypto_mode")
        has_key = bool(cleaned.get("new_encoding_aes_key") or self.instance.encoding_aes_key)
        if mode in (OfficialAccount.CryptoMode.SAFE, OfficialAccount.CryptoMode.COMPATIBLE) and not has_key:
            self.add_error("new_encoding_aes_key", _("安全模式和兼容模式需要 EncodingAESKey（§7.1）。"))
        return cleaned

    def save(self, commit=True):
        account = super().save(commit=False)
        self.key_rotated = False
        for form_field, model_field in SECRET_FIELDS.items():
            value = self.cleaned_data.get(form_field)
            if not value:
                continue  # blank means "keep the current value"
            current = account.encoding_aes_key
            if model_field == "encoding_aes_key" and current and current != value:
                # §7.1: keep the old key so pushes already encrypted with it still decrypt.
                account.previous_encoding_aes_key = current
                self.key_rotated = True
            setattr(account, model_field, value)
        if self.cleaned_data.get("clear_previous_key"):
            account.previous_encoding_aes_key = ""
        if commit:
            account.save()
            self.save_m2m()
        return account

    @property
    def changed_secrets(self):
        """Names (never values) of the secrets this submission set, for the audit log."""
        names = [SECRET_FIELDS[f] for f in SECRET_FIELDS if self.cleaned_data.get(f)]
        if self.cleaned_data.get("clear_previous_key"):
            names.append("previous_encoding_aes_key")
        return names


def _current(value, keep):
    return _("当前：%(masked)s。%(keep)s") % {"masked": mask_secret(value) or _("（未设置）"), "keep": keep}


class MediaAssetForm(forms.ModelForm):
    class Meta:
        model = MediaAsset
        fields = ["account", "title", "kind", "lifetime", "description", "file"]
        help_texts = {
            "file": _(
                "图片 ≤10 MB（PNG/JPEG/JPG/GIF）；语音 ≤2 MB（AMR/MP3，≤60 秒）；视频 ≤10 MB（MP4）；"
                "缩略图 ≤64 KB（JPG）。临时素材在微信保存 3 天。"
            ),
        }

    def clean(self):
        cleaned = super().clean()
        kind, lifetime, upload = cleaned.get("kind"), cleaned.get("lifetime"), cleaned.get("file")
        if not (kind and lifetime and upload):
            return cleaned
        if isinstance(upload, UploadedFile):
            name, size = upload.name, upload.size
        elif {"kind", "lifetime"} & set(self.changed_data):
            # The stored file must also fit the newly chosen kind or lifetime.
            name, size = upload.name, self.instance.size or upload.size
        else:
            return cleaned
        error = _validate_media(kind, lifetime, name, size)
        if error:
            self.add_error("file", error)
        return cleaned

    @property
    def needs_upload(self):
        """A new file, or a kind/lifetime WeChat has to be told about."""
        return not self.instance.media_id or bool({"file", "kind", "lifetime"} & set(self.changed_data))


def _validate_media(kind, lifetime, filename, size):
    """The §8 limits live in wechat.media; this only turns their verdict into words for the form."""
    from wechat import media

    try:
        verdict = media.validate_file(kind, lifetime, filename, size)
    except (media.MediaError, ValueError) as exc:
        return str(exc)
    # Tolerate a validator that reports instead of raising.
    if isinstance(verdict, str):
        return verdict
    if isinstance(verdict, (list, tuple)) and verdict and all(isinstance(v, str) for v in verdict):
        return "；".join(verdict)
    return ""


# §8.3: picurl is a URL of a JPG or PNG picture.
_NOT_JPG_PNG = (".gif", ".webp", ".bmp", ".svg", ".tif", ".tiff", ".heic", ".ico")


def _https_urls(field, **kwargs):
    # A link typed without a scheme is taken as https (Django 6's default too).
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class NewsTemplateForm(forms.ModelForm):
    class Meta:
        model = NewsTemplate
        formfield_callback = _https_urls
        fields = ["account", "name", "title", "description", "url", "picurl"]
        help_texts = {
            "url": _("粉丝点击图文后打开的网址（http 或 https）。"),
            "picurl": _("封面图片网址，JPG 或 PNG；留空则只显示文字。"),
            "description": _("图文卡片上标题下方的一段文字。"),
        }

    def clean_title(self):
        title = self.cleaned_data["title"].strip()
        if not title:
            raise forms.ValidationError(_("标题不能为空。"), code="required")
        return title

    def clean_url(self):
        return _http_url(self.cleaned_data["url"], _("链接"))

    def clean_picurl(self):
        picurl = self.cleaned_data.get("picurl", "")
        if not picurl:
            return ""
        picurl = _http_url(picurl, _("图片链接"))
        parts = urlsplit(picurl)
        fmt = (parse_qs(parts.query).get("wx_fmt") or [""])[0].lower()
        if parts.path.lower().endswith(_NOT_JPG_PNG) or fmt in {"gif", "webp", "bmp"}:
            raise forms.ValidationError(_("图文封面须为 JPG 或 PNG 图片（§8.3）。"), code="bad_picture")
        return picurl

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        # The card must also pass the sender's own §2.2 checks, or agents would
        # find out only when a reply is refused.
        article = {k: cleaned.get(k) or "" for k in ("title", "description", "url", "picurl")}
        try:
            builders.build("news", openid="preview", data={"articles": [article]})
        except builders.BuildError as exc:
            raise forms.ValidationError(str(exc), code="bad_news") from None
        return cleaned


def _http_url(value, label):
    value = (value or "").strip()
    scheme = urlsplit(value).scheme.lower()
    if scheme not in ("http", "https"):
        raise forms.ValidationError(
            _("%(label)s必须以 http:// 或 https:// 开头。") % {"label": label}, code="bad_scheme"
        )
    return value
