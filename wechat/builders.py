"""Customer-service message bodies of ../shared/wechat-api.md §2.2, as pure functions.

`build` returns the whole request body as one dict tree: `touser`, `msgtype`,
the payload under the key named by `msgtype` (a nested object), and the
optional `customservice.kf_account` (§2.3). `serialize` turns it into bytes
exactly once, UTF-8 without `\\uXXXX` escapes (§2.4). The three tutorial
defects of §2.5 — wrong msgtype, payload under another type's key, payload
double-encoded as a string — cannot be produced: the msgtype is the only key
used, and every payload value is checked to be a plain string (or, for the
two list fields, a list of objects of strings).
"""

import json

MSGTYPES = (
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
)

# §2.4: the OA docs give no maximum; 2048 bytes is the measured one.
TEXT_MAX_BYTES = 2048

# msgtype → (required fields, optional fields), in the order of §2.2.
_FIELDS = {
    "text": (("content",), ()),
    "image": (("media_id",), ()),
    "voice": (("media_id",), ()),
    # §2.2: thumb_media_id "include it when you have one"; title/description optional.
    "video": (("media_id",), ("thumb_media_id", "title", "description")),
    "music": (("musicurl", "hqmusicurl", "thumb_media_id"), ("title", "description")),
    "news": (("articles",), ()),
    "mpnews": (("media_id",), ()),
    "mpnewsarticle": (("article_id",), ()),
    "msgmenu": (("list",), ("head_content", "tail_content")),
    "wxcard": (("card_id",), ("card_ext",)),
    "miniprogrampage": (("title", "appid", "pagepath", "thumb_media_id"), ()),
}
_ORDER = {
    "video": ("media_id", "thumb_media_id", "title", "description"),
    "music": ("title", "description", "musicurl", "hqmusicurl", "thumb_media_id"),
    "msgmenu": ("head_content", "list", "tail_content"),
}
_ARTICLE_REQUIRED = ("title", "url")
_ARTICLE_OPTIONAL = ("description", "picurl")

# Which payload fields hold a media_id, and the kinds each accepts (§8.3).
MEDIA_FIELDS = {
    "image": {"media_id": ("image",)},
    "voice": {"media_id": ("voice",)},
    "video": {"media_id": ("video",), "thumb_media_id": ("thumb", "image")},
    "music": {"thumb_media_id": ("thumb", "image")},
    "miniprogrampage": {"thumb_media_id": ("image",)},
}

_LABEL = {
    "text": "文本",
    "image": "图片",
    "voice": "语音",
    "video": "视频",
    "music": "音乐",
    "news": "图文",
    "mpnews": "图文素材",
    "mpnewsarticle": "已发布文章",
    "msgmenu": "菜单",
    "wxcard": "卡券",
    "miniprogrampage": "小程序卡片",
}


class BuildError(ValueError):
    """The message cannot be sent as given; the text says why, in plain Chinese."""


def build(msgtype, *, openid, data, kf_account=""):
    """The full §2.2 body for `msgtype` with payload `data` to `openid`."""
    if msgtype not in _FIELDS:
        raise BuildError(f"不支持的消息类型“{msgtype}”，可用类型：{'、'.join(MSGTYPES)}")
    if not isinstance(openid, str) or not openid.strip():
        raise BuildError("缺少接收者 OpenID")
    if not isinstance(data, dict):
        # A payload handed over as a JSON string is the double-encoding defect of §2.5.
        raise BuildError(f"{_LABEL[msgtype]}消息的内容必须是一个对象（例如 {_example(msgtype)}），不能是字符串")
    payload = _BUILD[msgtype](msgtype, data)
    body = {"touser": openid, "msgtype": msgtype, msgtype: payload}
    if kf_account:
        if not isinstance(kf_account, str) or "@" not in kf_account:
            raise BuildError("客服账号格式应为“前缀@公众号微信号”")
        body["customservice"] = {"kf_account": kf_account}
    check_shape(body)
    return body


def serialize(body):
    """Bytes on the wire: one json.dumps, UTF-8, no \\u escapes (§2.4)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_shape(body):
    """The structural invariant of §2.5; raises BuildError when it does not hold."""
    msgtype = body.get("msgtype")
    if msgtype not in _FIELDS:
        raise BuildError(f"消息类型“{msgtype}”无效")
    if not isinstance(body.get(msgtype), dict):
        raise BuildError(f"消息体缺少“{msgtype}”对象")
    stray = [key for key in body if key in _FIELDS and key != msgtype]
    if stray:
        raise BuildError(f"消息体含有其他类型的键：{'、'.join(stray)}")
    allowed = {"touser", "msgtype", msgtype, "customservice"}
    extra = [key for key in body if key not in allowed]
    if extra:
        raise BuildError(f"消息体含有未知字段：{'、'.join(extra)}")


def payload_of(body):
    """(msgtype, payload, kf_account) of a built body: what `build` was given."""
    msgtype = body["msgtype"]
    return msgtype, body[msgtype], (body.get("customservice") or {}).get("kf_account", "")


def canonical(body):
    """A stored body rebuilt in the key order of §2.2 (PostgreSQL's jsonb does not keep key order)."""
    check_shape(body)
    msgtype, payload, kf_account = payload_of(body)
    return build(msgtype, openid=body.get("touser", ""), data=payload, kf_account=kf_account)


def preview(msgtype, payload):
    """A short line for conversation lists: the text itself, or a bracketed label."""
    if msgtype == "text":
        return payload.get("content", "")[:140]
    title = ""
    if msgtype == "news":
        title = payload["articles"][0].get("title", "")
    elif msgtype == "msgmenu":
        title = payload.get("head_content", "")
    else:
        title = payload.get("title", "")
    label = f"[{_LABEL.get(msgtype, msgtype)}]"
    return f"{label} {title}".strip()[:140]


def media_ids(msgtype, payload):
    """[(field, media_id, accepted kinds)] of a payload, for the §8.3 media-kind check."""
    return [
        (field, payload[field], kinds) for field, kinds in MEDIA_FIELDS.get(msgtype, {}).items() if payload.get(field)
    ]


# --- per-type payloads ---------------------------------------------------------


def _plain(msgtype, data):
    required, optional = _FIELDS[msgtype]
    _reject_unknown(msgtype, data, required + optional)
    payload = {}
    for name in _ORDER.get(msgtype, required + optional):
        if name in required:
            payload[name] = _string(msgtype, data, name, required=True)
        elif data.get(name) not in (None, ""):
            payload[name] = _string(msgtype, data, name, required=False)
    return payload


def _text(msgtype, data):
    payload = _plain(msgtype, data)
    size = len(payload["content"].encode("utf-8"))
    if size > TEXT_MAX_BYTES:
        raise BuildError(f"文本消息过长：{size} 字节，最多 {TEXT_MAX_BYTES} 字节（约 680 个汉字），请拆成几条发送")
    return payload


def _news(msgtype, data):
    _reject_unknown(msgtype, data, ("articles",))
    articles = data.get("articles")
    if not isinstance(articles, list):
        raise BuildError("图文消息的 articles 必须是一个列表（只含 1 篇文章）")
    if len(articles) != 1:
        # §2.2: exactly one article today; more → 45008.
        raise BuildError(f"图文消息只能包含 1 篇文章，现在有 {len(articles)} 篇")
    article = articles[0]
    if not isinstance(article, dict):
        raise BuildError("图文消息的文章必须是一个对象（title、description、url、picurl）")
    _reject_unknown("news", article, _ARTICLE_REQUIRED + _ARTICLE_OPTIONAL, where="文章")
    out = {}
    for name in ("title", "description", "url", "picurl"):
        if name in _ARTICLE_REQUIRED:
            out[name] = _string("news", article, name, required=True)
        elif article.get(name) not in (None, ""):
            out[name] = _string("news", article, name, required=False)
    for name in ("url", "picurl"):
        if name in out and not out[name].startswith(("http://", "https://")):
            raise BuildError(f"图文消息的 {name} 必须是以 http:// 或 https:// 开头的链接")
    return {"articles": [out]}


def _msgmenu(msgtype, data):
    required, optional = _FIELDS[msgtype]
    _reject_unknown(msgtype, data, required + optional)
    items = data.get("list")
    if not isinstance(items, list) or not items:
        raise BuildError("菜单消息至少需要一个选项（list：[{id, content}]）")
    menu = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise BuildError(f"菜单消息第 {index} 个选项必须是一个对象（id、content）")
        _reject_unknown("msgmenu", item, ("id", "content"), where=f"第 {index} 个选项")
        menu.append(
            {
                "id": _string("msgmenu", item, "id", required=True, where=f"第 {index} 个选项"),
                "content": _string("msgmenu", item, "content", required=True, where=f"第 {index} 个选项"),
            }
        )
    ids = [item["id"] for item in menu]
    if len(set(ids)) != len(ids):
        raise BuildError("菜单消息的选项 id 不能重复")
    payload = {}
    if data.get("head_content") not in (None, ""):
        payload["head_content"] = _string(msgtype, data, "head_content", required=False)
    payload["list"] = menu
    if data.get("tail_content") not in (None, ""):
        payload["tail_content"] = _string(msgtype, data, "tail_content", required=False)
    return payload


_BUILD = {msgtype: _plain for msgtype in MSGTYPES}
_BUILD.update({"text": _text, "news": _news, "msgmenu": _msgmenu})


def _reject_unknown(msgtype, data, allowed, where=""):
    unknown = sorted(key for key in data if key not in allowed)
    if unknown:
        place = f"{_LABEL[msgtype]}消息{where}"
        raise BuildError(f"{place}不认识的字段：{'、'.join(map(str, unknown))}；可用字段：{'、'.join(allowed)}")


def _string(msgtype, data, name, *, required, where=""):
    value = data.get(name)
    place = f"{_LABEL[msgtype]}消息{where}"
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BuildError(f"{place}缺少必填字段 {name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BuildError(f"{place}的 {name} 必须是文字，不能是 {type(value).__name__}")
    return str(value)


def _example(msgtype):
    required, _optional = _FIELDS[msgtype]
    if msgtype == "news":
        return '{"articles": [{"title": "…", "url": "…"}]}'
    if msgtype == "msgmenu":
        return '{"list": [{"id": "101", "content": "是"}]}'
    return "{" + ", ".join(f'"{name}": "…"' for name in required) + "}"
