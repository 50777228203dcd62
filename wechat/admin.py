"""Django admin for admins and operators.

Admins manage accounts (secrets write-only), the media library and news
templates; operators read the ledger, the send logs and the audit log, export
them and resend failed messages. Rows agents see change only through the
service functions (write, then push), so the admin never edits conversations,
inbound rows or the ledger directly, and never shows an access token.
"""

import csv
import json
import logging
from datetime import datetime, time, timedelta

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from config.logging import redact
from inbox import roles
from wechat import errors, tokens, webhook
from wechat.forms import MediaAssetForm, NewsTemplateForm, OfficialAccountForm
from wechat.models import (
    AuditLog,
    Contact,
    Conversation,
    InboundMessage,
    MediaAsset,
    NewsTemplate,
    OfficialAccount,
    OutboundMessage,
    SendLog,
)

log = logging.getLogger(__name__)

admin.site.site_header = _("Kefu Console 客服工作台管理")
admin.site.site_title = _("Kefu Console 管理")
admin.site.index_title = _("管理首页")

# Temporary media is flagged this long before WeChat forgets it (§8.1: 3 days).
EXPIRY_WARNING = timedelta(hours=24)


def audit(actor, action, obj=None, summary="", data=None):
    """One AuditLog row. `data` must never hold a secret: pass field names, not values."""
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        summary=str(summary)[:255],
        data=data or {},
    )


def describe(errcode):
    if errcode is None:
        return ""
    return errors.describe(errcode)


# --- shared filters ----------------------------------------------------------------


class DayFilter(admin.SimpleListFilter):
    """Calendar days in the console's time zone (Asia/Shanghai), including yesterday."""

    title = _("日期")
    parameter_name = "day"
    field = "created_at"

    def lookups(self, request, model_admin):
        return [
            ("today", _("今天")),
            ("yesterday", _("昨天")),
            ("7d", _("最近 7 天")),
            ("30d", _("最近 30 天")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        today = timezone.localdate()
        start_day, end_day = {
            "today": (today, today + timedelta(days=1)),
            "yesterday": (today - timedelta(days=1), today),
            "7d": (today - timedelta(days=6), today + timedelta(days=1)),
            "30d": (today - timedelta(days=29), today + timedelta(days=1)),
        }.get(value, (None, None))
        if start_day is None:
            return queryset
        zone = timezone.get_current_timezone()
        start = datetime.combine(start_day, time.min, tzinfo=zone)
        end = datetime.combine(end_day, time.min, tzinfo=zone)
        return queryset.filter(**{f"{self.field}__gte": start, f"{self.field}__lt": end})


class ReceivedDayFilter(DayFilter):
    field = "received_at"


class ErrcodeFilter(admin.SimpleListFilter):
    """The errcodes that actually occurred, each with its plain-language meaning."""

    title = _("errcode")
    parameter_name = "code"
    field = "errcode"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .exclude(**{f"{self.field}__isnull": True})
            .values_list(self.field, flat=True)
            .distinct()
            .order_by(self.field)
        )
        choices = [(str(code), f"{code} · {describe(code)}") for code in codes]
        return [*choices, ("none", _("无 errcode（网络错误或尚未发送）"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(**{f"{self.field}__isnull": True})
        try:
            code = int(value)
        except ValueError:
            return queryset.none()
        return queryset.filter(**{self.field: code})


class OutboundErrcodeFilter(ErrcodeFilter):
    field = "last_errcode"


class AccountFilter(admin.RelatedFieldListFilter):
    """The account filter, titled in Chinese (the models' account fields carry no verbose name)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = gettext("公众号")


class AccountColumn:
    @admin.display(description=_("公众号"), ordering="account")
    def account_name(self, obj):
        return obj.account if obj.account_id else "—"


# --- read-only base and CSV export ---------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never editable here: these rows change only through service functions."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    # A cell starting with = + - @ is a formula to Excel; neutralise text
    # written by followers and agents, but keep numbers such as -1 as numbers.
    if text and text[0] in "=+-@\t\r" and not _is_number(text):
        return "'" + text
    return text


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


class CsvExportMixin:
    """CSV export of selected rows (an action) or of the current filtered changelist (a view).

    UTF-8 with a BOM so Excel opens Chinese correctly; times in the console's time zone.
    """

    csv_columns = ()  # (header, callable(obj))
    csv_name = "export"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        extra = [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info)),
        ]
        return extra + super().get_urls()

    def csv_response(self, queryset):
        writer = csv.writer(_Echo())
        headers = [str(header) for header, _getter in self.csv_columns]

        def rows():
            yield "\ufeff" + writer.writerow(headers)
            for obj in queryset.iterator(chunk_size=500):
                yield writer.writerow([_csv_cell(getter(obj)) for _header, getter in self.csv_columns])

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.csv_name}-{stamp}.csv"'
        return response

    @admin.action(description=_("导出所选为 CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return self.csv_response(queryset)

    def export_view(self, request):
        """The changelist as filtered and searched now (same query string), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(gettext("筛选条件无效。"))
        return self.csv_response(changelist.get_queryset(request))


# --- accounts ------------------------------------------------------------------------


@admin.register(OfficialAccount)
class OfficialAccountAdmin(admin.ModelAdmin):
    form = OfficialAccountForm
    list_display = ("appid", "name", "crypto_mode", "is_active", "secret_hint", "key_hint", "webhook_path")
    list_filter = ("is_active", "crypto_mode")
    search_fields = ("appid", "name", "original_id")
    filter_horizontal = ("agents",)
    readonly_fields = ("duplicate_pushes", "created_at", "updated_at")

    def get_fieldsets(self, request, obj=None):
        server = ["new_token", "crypto_mode", "new_encoding_aes_key"]
        if obj is not None:
            server.append("clear_previous_key")
        fieldsets = [
            (None, {"fields": ["appid", "name", "original_id", "is_active"]}),
            (_("接口凭据（只写，不会显示）"), {"fields": ["new_app_secret", "token_mode"]}),
            (_("服务器配置（消息推送）"), {"fields": server}),
            (_("客服"), {"fields": ["agents"]}),
        ]
        if obj is not None:
            fieldsets.append((_("统计"), {"fields": ["duplicate_pushes", "created_at", "updated_at"]}))
        return fieldsets

    @admin.display(description=_("AppSecret"))
    def secret_hint(self, obj):
        return obj.masked_secret or "—"

    @admin.display(description=_("EncodingAESKey"))
    def key_hint(self, obj):
        if not obj.encoding_aes_key:
            return "—"
        if obj.previous_encoding_aes_key:
            return gettext("已设置（轮换中，保留上一个）")
        return gettext("已设置")

    @admin.display(description=_("服务器地址路径"))
    def webhook_path(self, obj):
        return reverse("wechat-webhook", args=[obj.appid])

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id) if object_id else None
        appid = obj.appid if obj else "APPID"
        # Built from the host this page was requested on: what an admin pastes
        # into the platform's "服务器配置 → URL" field (§6.1).
        extra_context["webhook_url"] = request.build_absolute_uri(reverse("wechat-webhook", args=[appid]))
        extra_context["webhook_is_template"] = obj is None
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        webhook.forget_account(obj.appid)  # this process at once; the others within seconds
        secrets = form.changed_secrets
        if change and ("app_secret" in secrets or "token_mode" in form.changed_data):
            # A token fetched with the old secret or from the other endpoint is
            # not ours to keep using; the next call fetches a fresh one (§1).
            tokens.invalidate(obj)
        changed = [f for f in form.changed_data if f not in ("new_app_secret", "new_token", "new_encoding_aes_key")]
        data = {"changed": changed, "secrets_set": secrets, "key_rotated": form.key_rotated}
        if form.key_rotated:
            summary = gettext("轮换 EncodingAESKey：%(account)s") % {"account": obj}
            self.message_user(
                request,
                gettext("已轮换 EncodingAESKey：新密钥生效，上一个密钥仍可解密旧推送。请在微信公众平台同步修改。"),
                messages.WARNING,
            )
        elif change:
            summary = gettext("修改公众号：%(account)s") % {"account": obj}
        else:
            summary = gettext("新建公众号：%(account)s") % {"account": obj}
        action = "account.rotate_key" if form.key_rotated else ("account.change" if change else "account.create")
        audit(request.user, action, obj, summary, data)

    def _audit_delete(self, request, obj):
        webhook.forget_account(obj.appid)
        audit(
            request.user,
            "account.delete",
            obj,
            gettext("删除公众号：%(account)s") % {"account": obj},
            {"appid": obj.appid},
        )

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)


# --- media library -------------------------------------------------------------------

EXPIRY_LABELS = {
    "missing": _("未上传"),
    "expired": _("已过期"),
    "expiring": _("24 小时内过期"),
    "ok": _("有效"),
    "permanent": _("永久"),
}
EXPIRY_COLOURS = {
    "missing": "#6b7280",
    "expired": "#b91c1c",
    "expiring": "#b45309",
    "ok": "#15803d",
    "permanent": "#1d4ed8",
}


def expiry_state(asset, now):
    """missing / expired / expiring / ok / permanent (§8.1: temporary media lives 3 days)."""
    if not asset.media_id:
        return "missing"
    if asset.lifetime == MediaAsset.Lifetime.PERMANENT:
        return "permanent"
    if asset.expires_at is None or asset.expires_at <= now:
        return "expired"
    if asset.expires_at - now < EXPIRY_WARNING:
        return "expiring"
    return "ok"


class ExpiryFilter(admin.SimpleListFilter):
    title = _("有效状态")
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [
            ("attention", _("需处理（已过期或 24 小时内过期）")),
            *((key, label) for key, label in EXPIRY_LABELS.items()),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        now = timezone.now()
        temporary = queryset.exclude(media_id="").filter(lifetime=MediaAsset.Lifetime.TEMPORARY)
        expired = temporary.filter(expires_at__isnull=True) | temporary.filter(expires_at__lte=now)
        expiring = temporary.filter(expires_at__gt=now, expires_at__lt=now + EXPIRY_WARNING)
        if value == "attention":
            return expired | expiring
        if value == "expired":
            return expired
        if value == "expiring":
            return expiring
        if value == "ok":
            return temporary.filter(expires_at__gte=now + EXPIRY_WARNING)
        if value == "permanent":
            return queryset.exclude(media_id="").filter(lifetime=MediaAsset.Lifetime.PERMANENT)
        if value == "missing":
            return queryset.filter(media_id="")
        return queryset


@admin.register(MediaAsset)
class MediaAssetAdmin(AccountColumn, admin.ModelAdmin):
    form = MediaAssetForm
    list_display = (
        "title",
        "kind",
        "lifetime",
        "expiry_badge",
        "media_id_short",
        "size_display",
        "account_name",
        "last_error",
    )
    list_filter = (ExpiryFilter, "kind", "lifetime", ("account", AccountFilter))
    search_fields = ("title", "media_id", "description")
    readonly_fields = (
        "media_id",
        "url",
        "size",
        "uploaded_at",
        "expires_at",
        "expiry_badge",
        "last_error",
        "created_at",
    )
    actions = ["reupload"]
    fieldsets = [
        (None, {"fields": ["account", "title", "kind", "lifetime", "description", "file"]}),
        (
            _("微信素材"),
            {
                "fields": [
                    "media_id",
                    "url",
                    "size",
                    "uploaded_at",
                    "expires_at",
                    "expiry_badge",
                    "last_error",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description=_("media_id"))
    def media_id_short(self, obj):
        if not obj.media_id:
            return "—"
        return obj.media_id if len(obj.media_id) <= 24 else f"{obj.media_id[:20]}…"

    @admin.display(description=_("大小"), ordering="size")
    def size_display(self, obj):
        if obj.size >= 1024 * 1024:
            return f"{obj.size / (1024 * 1024):.1f} MB"
        if obj.size >= 1024:
            return f"{obj.size / 1024:.0f} KB"
        return f"{obj.size} B"

    @admin.display(description=_("有效状态"), ordering="expires_at")
    def expiry_badge(self, obj):
        now = timezone.now()
        state = expiry_state(obj, now)
        label = EXPIRY_LABELS[state]
        if state in ("ok", "expiring") and obj.expires_at:
            label = gettext("%(label)s · 剩 %(left)s") % {
                "label": label,
                "left": timeuntil(obj.expires_at, now, depth=1),
            }
        return format_html(
            '<span class="media-expiry media-expiry-{}" style="color:#fff;background:{};padding:1px 6px;'
            'border-radius:3px;white-space:nowrap">{}</span>',
            state,
            EXPIRY_COLOURS[state],
            label,
        )

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("file")
        if "file" in form.changed_data and upload is not None:
            obj.size = upload.size
        super().save_model(request, obj, form, change)
        audit(
            request.user,
            "media.change" if change else "media.create",
            obj,
            (gettext("修改素材：%(title)s") if change else gettext("新增素材：%(title)s")) % {"title": obj.title},
            {"changed": form.changed_data, "kind": obj.kind, "lifetime": obj.lifetime},
        )
        if form.needs_upload:
            # The admin's save runs inside a transaction; talk to WeChat only
            # after it committed, so no database lock is held during the HTTP call.
            transaction.on_commit(lambda: self.upload(request, obj, action="media.upload"))

    def upload(self, request, asset, *, action):
        """Upload one asset to WeChat (wechat.media.upload_asset), tell the admin, audit it."""
        from wechat import media

        try:
            media.upload_asset(asset)
        except media.MediaError as exc:
            reason = str(exc)
        except Exception:
            log.exception("media upload of asset %s failed", asset.pk)
            reason = gettext("上传到微信失败（网络或接口错误），请稍后用“重新上传”重试。")
        else:
            if asset.last_error:
                MediaAsset.objects.filter(pk=asset.pk).update(last_error="")
                asset.last_error = ""
            expires = timezone.localtime(asset.expires_at).strftime("%Y-%m-%d %H:%M") if asset.expires_at else "—"
            self.message_user(
                request,
                gettext("“%(title)s”已上传到微信：media_id %(media_id)s，过期时间 %(expires)s。")
                % {"title": asset.title, "media_id": asset.media_id, "expires": expires},
                messages.SUCCESS,
            )
            audit(
                request.user,
                action,
                asset,
                gettext("上传素材到微信：%(title)s") % {"title": asset.title},
                {
                    "media_id": asset.media_id,
                    "lifetime": asset.lifetime,
                    "expires_at": asset.expires_at.isoformat() if asset.expires_at else None,
                },
            )
            return True
        MediaAsset.objects.filter(pk=asset.pk).update(last_error=reason[:255])
        asset.last_error = reason[:255]
        self.message_user(
            request,
            gettext("“%(title)s”上传失败：%(reason)s") % {"title": asset.title, "reason": reason},
            messages.ERROR,
        )
        audit(
            request.user,
            f"{action}_failed",
            asset,
            gettext("素材上传失败：%(title)s") % {"title": asset.title},
            {"reason": reason[:255]},
        )
        return False

    @admin.action(
        description=_("重新上传到微信（保留同一条素材，引用它的模板和快捷回复继续可用）"), permissions=["change"]
    )
    def reupload(self, request, queryset):
        done = 0
        for asset in queryset.order_by("pk"):
            if not asset.file:
                self.message_user(
                    request, gettext("“%(title)s”没有文件，无法上传。") % {"title": asset.title}, messages.ERROR
                )
                continue
            done += self.upload(request, asset, action="media.reupload")
        if done:
            self.message_user(
                request,
                ngettext("已重新上传 %(n)d 个素材。", "已重新上传 %(n)d 个素材。", done) % {"n": done},
                messages.SUCCESS,
            )

    def _audit_delete(self, request, obj):
        audit(
            request.user,
            "media.delete",
            obj,
            gettext("删除素材：%(title)s") % {"title": obj.title},
            {"media_id": obj.media_id, "kind": obj.kind},
        )

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)

    # Permanent material lives in WeChat's library too (§8.2): it is deleted
    # there first, and an entry whose deletion WeChat refused stays, with the
    # reason shown, so the library never forgets media that still exists.
    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST" and "post" in request.POST:
            obj = self.get_object(request, unquote(object_id))
            if (
                obj is not None
                and self.has_delete_permission(request, obj)
                and not self._deleted_on_wechat(request, obj)
            ):
                return redirect(reverse("admin:wechat_mediaasset_change", args=[obj.pk]))
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (type(self)._delete_selected, name, description)
        return actions

    def _delete_selected(self, request, queryset):
        if request.POST.get("post"):  # confirmed: WeChat first, then the entries it let go
            gone = [obj.pk for obj in queryset.order_by("pk") if self._deleted_on_wechat(request, obj)]
            queryset = queryset.filter(pk__in=gone)
            if not gone:
                return None
        return delete_selected(self, request, queryset)

    def _deleted_on_wechat(self, request, obj):
        from wechat import media

        try:
            media.delete_on_wechat(obj)
        except media.MediaError as exc:
            self.message_user(
                request,
                gettext("“%(title)s” 未删除：%(reason)s") % {"title": obj.title, "reason": exc},
                messages.ERROR,
            )
            return False
        return True


# --- news templates ----------------------------------------------------------------


@admin.register(NewsTemplate)
class NewsTemplateAdmin(AccountColumn, admin.ModelAdmin):
    form = NewsTemplateForm
    list_display = ("name", "title", "account_name", "url", "created_at")
    list_filter = (("account", AccountFilter),)
    search_fields = ("name", "title", "description", "url")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # The admin's own callback replaces the form's; keep https as the assumed scheme.
        if isinstance(db_field, models.URLField):
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    class Media:
        css = {"all": ["ops/news_preview.css"]}
        js = ["ops/news_preview.js"]


# --- the ledger and its logs ---------------------------------------------------------

STATUS_COLOURS = {
    "queued": "#6b7280",
    "sending": "#1d4ed8",
    "sent": "#15803d",
    "failed": "#b91c1c",
    "unknown": "#b45309",
    "cancelled": "#6b7280",
}


class SendLogInline(admin.TabularInline):
    model = SendLog
    extra = 0
    can_delete = False
    fields = ("created_at", "endpoint_display", "outcome", "http_status", "errcode", "reason", "latency_ms", "attempt")
    readonly_fields = fields
    ordering = ("created_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("接口"))
    def endpoint_display(self, obj):
        return redact(obj.endpoint)

    @admin.display(description=_("原因说明"))
    def reason(self, obj):
        return describe(obj.errcode)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(AccountColumn, CsvExportMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "account_name",
        "openid",
        "agent",
        "msgtype",
        "preview",
        "status_badge",
        "last_errcode",
        "reason_text",
        "attempts",
    )
    list_filter = (
        "status",
        OutboundErrcodeFilter,
        ("agent", admin.RelatedOnlyFieldListFilter),
        ("account", AccountFilter),
        DayFilter,
        "msgtype",
    )
    search_fields = ("contact__openid", "preview", "last_errmsg", "rid")
    date_hierarchy = "created_at"
    list_select_related = ("account", "contact", "agent")
    actions = ["resend", "export_csv"]
    inlines = [SendLogInline]
    fields = (
        "account_name",
        "contact",
        "conversation",
        "agent",
        "msgtype",
        "payload_display",
        "preview",
        "status",
        "last_errcode",
        "reason_text",
        "last_errmsg",
        "rid",
        "attempts",
        "send_at",
        "created_at",
        "sent_at",
        "resend_of",
        "resends_display",
    )
    readonly_fields = fields
    csv_name = "outbound"
    csv_columns = (
        (_("编号"), lambda m: m.pk),
        (_("创建时间"), lambda m: m.created_at),
        (_("公众号"), lambda m: m.account.appid),
        (_("OpenID"), lambda m: m.contact.openid),
        (_("客服"), lambda m: m.agent.get_username() if m.agent else ""),
        (_("类型"), lambda m: m.msgtype),
        (_("内容"), lambda m: m.preview),
        (_("状态"), lambda m: m.get_status_display()),
        (_("errcode"), lambda m: m.last_errcode),
        (_("原因说明"), lambda m: describe(m.last_errcode) or m.reason),
        (_("errmsg"), lambda m: m.last_errmsg),
        (_("尝试次数"), lambda m: m.attempts),
        (_("发送时间"), lambda m: m.sent_at),
        (_("重发自"), lambda m: m.resend_of_id or ""),
    )

    @admin.display(description=_("OpenID"), ordering="contact__openid")
    def openid(self, obj):
        return obj.contact.openid

    @admin.display(description=_("状态"), ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="send-status send-status-{}" style="color:{};font-weight:600">{}</span>',
            obj.status,
            STATUS_COLOURS.get(obj.status, "#111"),
            obj.get_status_display(),
        )

    @admin.display(description=_("原因说明"))
    def reason_text(self, obj):
        return describe(obj.last_errcode) or obj.reason

    @admin.display(description=_("消息内容"))
    def payload_display(self, obj):
        return format_html(
            '<pre style="white-space:pre-wrap">{}</pre>', json.dumps(obj.payload, ensure_ascii=False, indent=2)
        )

    @admin.display(description=_("重发记录"))
    def resends_display(self, obj):
        ids = list(obj.resends.values_list("pk", flat=True))
        return ", ".join(f"#{pk}" for pk in ids) or "—"

    def has_resend_permission(self, request):
        return roles.has_role(request.user, roles.OPERATOR, roles.ADMIN) and self.has_view_permission(request)

    @admin.action(description=_("重发所选的失败 / 结果未知消息"), permissions=["resend"])
    def resend(self, request, queryset):
        eligible = list(
            queryset.filter(status__in=[OutboundMessage.Status.FAILED, OutboundMessage.Status.UNKNOWN])
            .select_related("account", "contact")
            .order_by("pk")
        )
        skipped = queryset.count() - len(eligible)
        if request.POST.get("post") == "yes" and eligible:
            return self._do_resend(request, eligible, skipped)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("确认重发"),
            "opts": self.opts,
            "messages_to_resend": [(m, describe(m.last_errcode) or m.reason) for m in eligible],
            "skipped": skipped,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected_ids": [m.pk for m in queryset],
            "media": self.media,
        }
        return TemplateResponse(request, "admin/wechat/outboundmessage/resend_confirmation.html", context)

    def _do_resend(self, request, eligible, skipped):
        from wechat import builders, outbound

        created = []
        for message in eligible:
            try:
                # resend_message writes the new ledger row and its audit record together.
                new = outbound.resend_message(message=message, agent=request.user)
            except (outbound.SendRefused, builders.BuildError) as exc:
                reason = getattr(exc, "message", "") or str(exc)
                self.message_user(
                    request,
                    gettext("消息 #%(id)d 未重发：%(reason)s") % {"id": message.pk, "reason": reason},
                    messages.ERROR,
                )
            else:
                created.append(new)
        if created:
            self.message_user(
                request,
                gettext("已重发 %(n)d 条消息（新编号 %(ids)s），结果请看状态列。")
                % {"n": len(created), "ids": ", ".join(f"#{m.pk}" for m in created)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request, gettext("%(n)d 条消息不是“失败”或“结果未知”，未重发。") % {"n": skipped}, messages.WARNING
            )
        return None


@admin.register(SendLog)
class SendLogAdmin(AccountColumn, CsvExportMixin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account_name",
        "endpoint_display",
        "outcome",
        "http_status",
        "errcode",
        "reason",
        "latency_ms",
        "attempt",
        "outbound_link",
    )
    list_filter = (
        "outcome",
        ErrcodeFilter,
        ("outbound__agent", admin.RelatedOnlyFieldListFilter),
        ("account", AccountFilter),
        DayFilter,
    )
    search_fields = ("outbound__contact__openid", "outbound__preview", "errmsg", "rid")
    date_hierarchy = "created_at"
    list_select_related = ("account", "outbound")
    actions = ["export_csv"]
    fields = (
        "created_at",
        "account_name",
        "outbound_link",
        "endpoint_display",
        "request_body_display",
        "http_status",
        "errcode",
        "reason",
        "errmsg",
        "rid",
        "latency_ms",
        "attempt",
        "worker",
        "outcome",
    )
    readonly_fields = fields
    csv_name = "sendlog"
    csv_columns = (
        (_("时间"), lambda s: s.created_at),
        (_("公众号"), lambda s: s.account.appid if s.account else ""),
        (_("接口"), lambda s: redact(s.endpoint)),
        (_("结果"), lambda s: s.outcome),
        (_("HTTP"), lambda s: s.http_status),
        (_("errcode"), lambda s: s.errcode),
        (_("原因说明"), lambda s: describe(s.errcode)),
        (_("errmsg"), lambda s: redact(s.errmsg)),
        (_("rid"), lambda s: s.rid),
        (_("耗时（毫秒）"), lambda s: s.latency_ms),
        (_("第几次尝试"), lambda s: s.attempt),
        (_("消息编号"), lambda s: s.outbound_id or ""),
    )

    @admin.display(description=_("接口"), ordering="endpoint")
    def endpoint_display(self, obj):
        # Stored redacted already; redacting again costs nothing and guards old rows.
        return redact(obj.endpoint)

    @admin.display(description=_("请求内容"))
    def request_body_display(self, obj):
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', redact(obj.request_body))

    @admin.display(description=_("原因说明"))
    def reason(self, obj):
        return describe(obj.errcode)

    @admin.display(description=_("消息"))
    def outbound_link(self, obj):
        if not obj.outbound_id:
            return "—"
        url = reverse("admin:wechat_outboundmessage_change", args=[obj.outbound_id])
        return format_html('<a href="{}">#{}</a>', url, obj.outbound_id)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter), DayFilter)
    search_fields = ("summary", "object_id", "action", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    fields = ("created_at", "actor", "action", "object_type", "object_id", "summary", "data_display")
    readonly_fields = fields

    @admin.display(description=_("详情"))
    def data_display(self, obj):
        return format_html(
            '<pre style="white-space:pre-wrap">{}</pre>', json.dumps(obj.data, ensure_ascii=False, indent=2)
        )


# --- what operators may look at, never edit here ----------------------------------------


@admin.register(Contact)
class ContactAdmin(AccountColumn, ReadOnlyAdmin):
    list_display = ("openid", "account_name", "remark", "display_name", "subscribed", "last_inbound_at")
    list_filter = ("subscribed", ("account", AccountFilter))
    search_fields = ("openid", "remark", "display_name")


@admin.register(Conversation)
class ConversationAdmin(AccountColumn, ReadOnlyAdmin):
    list_display = (
        "id",
        "account_name",
        "contact",
        "status",
        "assignee",
        "last_message_at",
        "first_inbound_at",
        "first_response_at",
    )
    list_filter = ("status", ("account", AccountFilter), ("assignee", admin.RelatedOnlyFieldListFilter))
    search_fields = ("contact__openid", "last_message_preview")
    list_select_related = ("account", "contact", "assignee")


@admin.register(InboundMessage)
class InboundMessageAdmin(AccountColumn, ReadOnlyAdmin):
    list_display = ("id", "received_at", "account_name", "from_user", "msg_type", "event", "content", "media_status")
    list_filter = ("msg_type", "media_status", ("account", AccountFilter), ReceivedDayFilter)
    search_fields = ("from_user", "content", "msg_id")
    list_select_related = ("account",)
    exclude = ("raw_xml",)
