"""The reply composer: turn a posted form into (msgtype, data, send_at) for `wechat.outbound`.

One form posts every message type of §2.2; only the fields of the chosen
type are read. `data` is the payload object of that type (the nested object
whose key equals msgtype); `wechat.builders` validates it and adds `touser`.
Media come from the account's library (`wechat.MediaAsset`) and must be of
the kind §8.3 asks for, uploaded (have a media_id) and not expired.
"""

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from wechat import window
from wechat.models import MediaAsset, NewsTemplate

# §2.4: the OA docs name no maximum; 2048 bytes of UTF-8 is the measured one.
TEXT_MAX_BYTES = 2048

MSGTYPES = {
    "text": gettext_lazy("文本"),
    "image": gettext_lazy("图片"),
    "voice": gettext_lazy("语音"),
    "video": gettext_lazy("视频"),
    "music": gettext_lazy("音乐"),
    "news": gettext_lazy("图文链接"),
    "mpnews": gettext_lazy("图文素材"),
    "mpnewsarticle": gettext_lazy("已发布文章"),
    "msgmenu": gettext_lazy("菜单消息"),
    "wxcard": gettext_lazy("卡券"),
    "miniprogrampage": gettext_lazy("小程序卡片"),
}

# Which library kinds each field accepts (§8.3).
MEDIA_KINDS = {
    "image": ("image",),
    "voice": ("voice",),
    "video": ("video",),
    "thumb": ("thumb", "image"),  # video / music covers: thumb or image
    "miniprogram_thumb": ("image",),  # wrong type → 40004 invalid media type
}

WINDOW_REASONS = {
    window.UNSUBSCRIBED: gettext_lazy("粉丝已取消关注，无法发送客服消息"),
    window.NEVER_OPENED: gettext_lazy("粉丝尚未与公众号互动，客服消息窗口未开启"),
    window.EXPIRED: gettext_lazy("客服消息窗口已关闭（超过 48 小时 / 1 分钟），需等待粉丝再次互动"),
    window.QUOTA_USED: gettext_lazy("本次窗口的发送条数已用完，需等待粉丝再次互动"),
}


class ComposeError(ValueError):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def usable_media(account, now):
    """Library items a reply can use now, grouped by kind."""
    assets = (
        MediaAsset.objects.filter(account=account)
        .exclude(media_id="")
        .exclude(expires_at__lte=now)
        .order_by("kind", "-created_at")
    )
    grouped = {kind: [] for kind in MediaAsset.Kind.values}
    for asset in assets:
        grouped[asset.kind].append(asset)
    return grouped


def news_templates(account):
    return NewsTemplate.objects.filter(Q(account=account) | Q(account__isnull=True)).order_by("name")


def _field(post, name, *, required=False, label=""):
    value = (post.get(name) or "").strip()
    if required and not value:
        raise ComposeError(_("请填写%(field)s") % {"field": label or name})
    return value


def _media_id(post, name, *, account, kinds, now, required=True, label=""):
    raw = (post.get(name) or "").strip()
    if not raw:
        if required:
            raise ComposeError(_("请从素材库选择%(field)s") % {"field": label})
        return ""
    try:
        asset = MediaAsset.objects.get(pk=int(raw), account=account)
    except (ValueError, MediaAsset.DoesNotExist) as exc:
        raise ComposeError(_("素材不存在或不属于这个公众号")) from exc
    if asset.kind not in kinds:
        raise ComposeError(_("素材「%(title)s」的类型不对") % {"title": asset.title})
    if not asset.media_id:
        raise ComposeError(_("素材「%(title)s」还没有上传到微信") % {"title": asset.title})
    if asset.is_expired(now):
        # Temporary media live 3 days (§8.1); WeChat would answer 40007.
        raise ComposeError(_("素材「%(title)s」已过期，请重新上传") % {"title": asset.title})
    return asset.media_id


def parse_send_at(raw, now):
    """A datetime-local value in the console's time zone (Asia/Shanghai); empty means now."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ComposeError(_("定时发送的时间格式不对")) from exc
    when = timezone.make_aware(naive) if timezone.is_naive(naive) else naive
    if when <= now:
        raise ComposeError(_("定时发送的时间必须晚于现在"))
    if when > now + timedelta(hours=48):
        # No window lasts longer than 48 hours (§3.1).
        raise ComposeError(_("定时发送最多提前 48 小时"))
    return when


def parse(post, *, account, now):
    msgtype = (post.get("msgtype") or "text").strip()
    if msgtype not in MSGTYPES:
        raise ComposeError(_("不支持的消息类型"))
    data = _PARSERS[msgtype](post, account=account, now=now)
    return msgtype, data, parse_send_at(post.get("send_at"), now)


def _text(post, **_kw):
    content = post.get("content") or ""
    if not content.strip():
        raise ComposeError(_("消息内容不能为空"))
    size = len(content.encode("utf-8"))
    if size > TEXT_MAX_BYTES:
        raise ComposeError(_("文本最多 %(max)d 字节，现在 %(size)d 字节") % {"max": TEXT_MAX_BYTES, "size": size})
    return {"content": content}


def _simple_media(kind, label):
    def parse_media(post, *, account, now):
        return {
            "media_id": _media_id(post, f"{kind}_asset", account=account, kinds=MEDIA_KINDS[kind], now=now, label=label)
        }

    return parse_media


def _video(post, *, account, now):
    data = {
        "media_id": _media_id(
            post, "video_asset", account=account, kinds=MEDIA_KINDS["video"], now=now, label=_("视频")
        )
    }
    thumb = _media_id(post, "video_thumb_asset", account=account, kinds=MEDIA_KINDS["thumb"], now=now, required=False)
    if thumb:
        data["thumb_media_id"] = thumb
    for name in ("title", "description"):
        value = _field(post, f"video_{name}")
        if value:
            data[name] = value
    return data


def _music(post, *, account, now):
    return {
        "title": _field(post, "music_title"),
        "description": _field(post, "music_description"),
        "musicurl": _field(post, "music_url", required=True, label=_("音乐链接")),
        "hqmusicurl": _field(post, "music_hq_url") or _field(post, "music_url"),
        "thumb_media_id": _media_id(
            post, "music_thumb_asset", account=account, kinds=MEDIA_KINDS["thumb"], now=now, label=_("封面")
        ),
    }


def _news(post, *, account, now):
    raw = _field(post, "news_template", required=True, label=_("图文模板"))
    try:
        template = NewsTemplate.objects.get(pk=int(raw))
    except (ValueError, NewsTemplate.DoesNotExist) as exc:
        raise ComposeError(_("图文模板不存在")) from exc
    if template.account_id not in (None, account.pk):
        raise ComposeError(_("图文模板不存在"))
    # Exactly one article (§2.2; more → 45008).
    return {"articles": [template.article()]}


def _mpnews(post, **_kw):
    return {"media_id": _field(post, "mpnews_media_id", required=True, label="media_id")}


def _mpnewsarticle(post, **_kw):
    return {"article_id": _field(post, "article_id", required=True, label="article_id")}


def _msgmenu(post, **_kw):
    choices = []
    for line in (post.get("menu_items") or "").splitlines():
        line = line.strip()
        if not line:
            continue
        ident, sep, content = line.partition("|")
        if not sep:
            ident, content = str(100 + len(choices) + 1), line
        choices.append({"id": ident.strip(), "content": content.strip()})
    if not choices:
        raise ComposeError(_("菜单至少需要一个选项"))
    return {
        "head_content": _field(post, "menu_head"),
        "list": choices,
        "tail_content": _field(post, "menu_tail"),
    }


def _wxcard(post, **_kw):
    return {"card_id": _field(post, "card_id", required=True, label="card_id")}


def _miniprogrampage(post, *, account, now):
    return {
        "title": _field(post, "mp_title", required=True, label=_("标题")),
        "appid": _field(post, "mp_appid", required=True, label=_("小程序 AppID")),
        "pagepath": _field(post, "mp_pagepath", required=True, label=_("页面路径")),
        "thumb_media_id": _media_id(
            post,
            "mp_thumb_asset",
            account=account,
            kinds=MEDIA_KINDS["miniprogram_thumb"],
            now=now,
            label=_("封面图片"),
        ),
    }


_PARSERS = {
    "text": _text,
    "image": _simple_media("image", gettext_lazy("图片")),
    "voice": _simple_media("voice", gettext_lazy("语音")),
    "video": _video,
    "music": _music,
    "news": _news,
    "mpnews": _mpnews,
    "mpnewsarticle": _mpnewsarticle,
    "msgmenu": _msgmenu,
    "wxcard": _wxcard,
    "miniprogrampage": _miniprogrampage,
}
