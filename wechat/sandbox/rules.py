"""The fake platform's rules as pure functions: no database, the clock passed in.

Each function either returns what the platform accepts or raises `ApiError`
with the errcode the real API answers (../shared/wechat-api.md is the
reference; each rule cites its section). `wechat.sandbox.platform` applies
them to the stored state; the views only translate HTTP.
"""

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from wechat import window

# errmsg texts as the real API words them (§1.4, §3.2, §4, §8, §10.2).
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40066: "invalid url",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    42001: "access_token expired",
    43002: "require POST method",
    43004: "require subscribe",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45002: "content size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45072: "command field content is invalid",
    45080: "no message interaction with the user in the last 30 seconds",
    45081: "user is already in typing state",
    45162: "invalid type",
    47001: "data format error",
    65401: "invalid kf_account",
}


class ApiError(Exception):
    """An answer of the platform other than ok: `{"errcode": …, "errmsg": …}` with HTTP 200."""

    def __init__(self, errcode, hint=""):
        self.errcode = errcode
        self.hint = hint
        super().__init__(f"{errcode} {ERRMSG.get(errcode, 'error')}{f' hint: [{hint}]' if hint else ''}")

    def errmsg(self, rid):
        text = ERRMSG.get(self.errcode, "error")
        if self.hint:
            text += f" hint: [{self.hint}]"
        # Real errmsgs end with a request id that support asks for (§ Conventions).
        return f"{text} rid: {rid}"


def new_rid():
    return "-".join(secrets.token_hex(4) for _ in range(3))


# --- Tokens (§1) -------------------------------------------------------------

TOKEN_LIFETIME = timedelta(seconds=7200)
# A replaced classic token keeps working this long (§1.1 "~5 minutes").
CLASSIC_OVERLAP = timedelta(minutes=5)
# Stable tokens roll this long before expiry; any token handed out has at
# least this much left (§1.2).
STABLE_ROLL_BEFORE = timedelta(seconds=300)
STABLE_FORCE_MIN_GAP = timedelta(seconds=30)
STABLE_FORCE_PER_DAY = 20
CLASSIC_PER_DAY = 2000


def new_token_value():
    # Real tokens are long opaque [A-Za-z0-9_-] strings; §1.1 asks for 512 chars of room.
    return secrets.token_urlsafe(120)


def stable_decision(current, *, force, now, forced_today):
    """What stable_token does: ("reuse", token), ("mint", None) or ApiError (§1.2).

    `current` is the live stable token (or None), `forced_today` how many
    force refreshes this account made today.
    """
    if force:
        if current is not None and now - current.issued_at < STABLE_FORCE_MIN_GAP:
            return "reuse", current  # too soon: no refresh, same token
        if forced_today >= STABLE_FORCE_PER_DAY:
            # Community reports: the exhausted force allowance surfaces as 45009.
            raise ApiError(45009, "force_refresh limit")
        return "mint", None
    if current is not None and current.expires_at - now >= STABLE_ROLL_BEFORE:
        return "reuse", current
    return "mint", None


def token_problem(token, now):
    """The errcode for calling with `token` at `now`, or 0 when it is good (§1.3, §1.4)."""
    if token is None:
        return 40014  # never issued by us: malformed or another platform's
    if now >= token.expires_at:
        return 42001
    if token.valid_until is not None and now >= token.valid_until:
        return 40001  # replaced by a newer one: "not latest"
    return 0


# --- custom/send (§2) ----------------------------------------------------------

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
TEXT_MAX_BYTES = 2048  # §2.4
# A \uXXXX escape not itself escaped (an even run of backslashes before it).
_UNICODE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u[0-9a-fA-F]{4}")

# Fields that must be non-empty strings, per msgtype (§2.2).
_REQUIRED = {
    "text": ("content",),
    "image": ("media_id",),
    "voice": ("media_id",),
    "video": ("media_id",),
    "music": ("musicurl", "hqmusicurl", "thumb_media_id"),
    "mpnews": ("media_id",),
    "mpnewsarticle": ("article_id",),
    "msgmenu": (),
    "wxcard": ("card_id",),
    "miniprogrampage": ("title", "appid", "pagepath", "thumb_media_id"),
    "news": (),
}
_OPTIONAL_STRINGS = {
    "video": ("thumb_media_id", "title", "description"),
    "music": ("title", "description"),
    "msgmenu": ("head_content", "tail_content"),
}


@dataclass(frozen=True)
class MediaRef:
    field: str
    media_id: str
    kinds: frozenset


@dataclass(frozen=True)
class CustomMessage:
    touser: str
    msgtype: str
    payload: dict
    body: dict
    kf_account: str = ""
    media: tuple = field(default_factory=tuple)


# Which media kinds each media field accepts (§8.3).
_MEDIA_FIELDS = {
    "image": {"media_id": {"image"}},
    "voice": {"media_id": {"voice"}},
    "video": {"media_id": {"video"}, "thumb_media_id": {"thumb", "image"}},
    "music": {"thumb_media_id": {"thumb", "image"}},
    "mpnews": {"media_id": {"news"}},
    "miniprogrampage": {"thumb_media_id": {"image"}},
}


def has_unicode_escape(text):
    """§2.4: the platform refuses `\\uXXXX` escapes (40033); raw UTF-8 is required."""
    return bool(_UNICODE_ESCAPE.search(text))


def parse_json_body(raw):
    """Raw request bytes → dict, with the platform's errcodes for each way it can be wrong."""
    if not raw or not raw.strip():
        raise ApiError(44002)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(47001, "body is not UTF-8") from exc
    if has_unicode_escape(text):
        raise ApiError(40033)
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ApiError(47001, "body is not JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(47001, "body must be a JSON object")
    return body


def parse_custom_message(raw):
    """Validate a custom/send body the way §2 describes; returns a CustomMessage."""
    body = parse_json_body(raw)
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        raise ApiError(40003, "touser missing")
    msgtype = body.get("msgtype")
    if msgtype not in MSGTYPES:
        raise ApiError(40008, f"msgtype {msgtype!r}" if isinstance(msgtype, str) else "msgtype missing")
    # §2.1: the payload sits under a key spelled exactly like msgtype, as an
    # object — not a string holding JSON (§2.5 double encoding).
    if msgtype not in body:
        raise ApiError(47001, f"missing {msgtype} object for msgtype {msgtype}")
    payload = body[msgtype]
    if not isinstance(payload, dict):
        raise ApiError(45162, f"{msgtype} must be an object")
    others = [key for key in body if key in MSGTYPES and key != msgtype]
    if others:
        raise ApiError(47001, f"payload key {others[0]} does not match msgtype {msgtype}")
    kf_account = _kf_account(body.get("customservice"))
    _check_fields(msgtype, payload)
    media = tuple(
        MediaRef(name, payload[name], frozenset(kinds))
        for name, kinds in _MEDIA_FIELDS.get(msgtype, {}).items()
        if payload.get(name)
    )
    return CustomMessage(touser, msgtype, payload, body, kf_account, media)


def _kf_account(customservice):
    if customservice is None:
        return ""
    # §2.3: {"kf_account": "prefix@oa_wechat_id"}
    if not isinstance(customservice, dict):
        raise ApiError(45162, "customservice must be an object")
    value = customservice.get("kf_account")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,10}@[A-Za-z0-9_-]{1,30}", value):
        raise ApiError(65401)
    return value


def _check_fields(msgtype, payload):
    for name in _REQUIRED[msgtype]:
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(45162, f"{msgtype}.{name} must be a string")
        if not value:
            if name == "content":
                raise ApiError(44004)
            if name.endswith("media_id"):
                raise ApiError(40007, f"{msgtype}.{name} missing")
            raise ApiError(47001, f"{msgtype}.{name} missing")
    for name in _OPTIONAL_STRINGS.get(msgtype, ()):
        if name in payload and not isinstance(payload[name], str):
            raise ApiError(45162, f"{msgtype}.{name} must be a string")
    if msgtype == "text" and len(payload["content"].encode("utf-8")) > TEXT_MAX_BYTES:
        raise ApiError(45002)
    if msgtype == "news":
        _check_news(payload)
    if msgtype == "msgmenu":
        _check_msgmenu(payload)


def _check_news(payload):
    articles = payload.get("articles")
    if articles is None:
        raise ApiError(44003)
    if not isinstance(articles, list):
        raise ApiError(45162, "news.articles must be an array")  # §2.2 community report
    if not articles:
        raise ApiError(44003)
    if len(articles) > 1:
        raise ApiError(45008)  # exactly one article (§2.2)
    article = articles[0]
    if not isinstance(article, dict):
        raise ApiError(45162, "news.articles[0] must be an object")
    for name in ("title", "description", "url", "picurl"):
        if name in article and not isinstance(article[name], str):
            raise ApiError(45162, f"news.articles[0].{name} must be a string")
    if not article.get("title") or not article.get("url"):
        raise ApiError(47001, "news article needs title and url")


def _check_msgmenu(payload):
    items = payload.get("list")
    if not isinstance(items, list) or not items:
        raise ApiError(47001, "msgmenu.list must be a non-empty array")
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(45162, "msgmenu.list items must be objects")
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise ApiError(47001, "msgmenu.list item needs an id string")
        if not isinstance(item.get("content"), str) or not item["content"]:
            raise ApiError(47001, "msgmenu.list item needs content")


def check_media_ref(ref, media, now):
    """A media_id in a message must exist, be alive and be of the right kind (§8.3, §10.2)."""
    if media is None or media.is_expired(now):
        raise ApiError(40007, f"{ref.field} {ref.media_id[:16]}")
    if media.kind not in ref.kinds:
        raise ApiError(40004, f"{ref.field} must be {'/'.join(sorted(ref.kinds))}, got {media.kind}")


def window_errcode(reason):
    """The errcode for a refused window decision of `wechat.window` (§3.2)."""
    if reason == window.QUOTA_USED:
        return 45047
    return 45015


# --- typing (§4) ---------------------------------------------------------------

TYPING_EXCHANGE = timedelta(seconds=30)
TYPING_LASTS = timedelta(seconds=15)


def typing_decision(command, *, last_exchange_at, typing_until, now):
    """New typing_until after `command`, or ApiError (45072 / 45080 / 45081)."""
    if command not in ("Typing", "CancelTyping"):
        raise ApiError(45072)
    if command == "CancelTyping":
        return None
    if last_exchange_at is None or now - last_exchange_at > TYPING_EXCHANGE:
        raise ApiError(45080)
    if typing_until is not None and now < typing_until:
        raise ApiError(45081)
    return now + TYPING_LASTS


# --- media (§8) ----------------------------------------------------------------

MB = 1024 * 1024
MEDIA_LIFETIME = timedelta(days=3)  # §8.1
# (max bytes, formats, errcode when too big) per kind, temporary (§8.1) and permanent (§8.2).
TEMPORARY_LIMITS = {
    "image": (10 * MB, {"png", "jpeg", "jpg", "gif"}, 40009),
    "voice": (2 * MB, {"amr", "mp3"}, 40010),
    "video": (10 * MB, {"mp4"}, 40011),
    "thumb": (64 * 1024, {"jpg", "jpeg"}, 40012),
}
PERMANENT_LIMITS = {
    "image": (10 * MB, {"bmp", "png", "jpeg", "jpg", "gif"}, 40009),
    "voice": (2 * MB, {"mp3", "wma", "wav", "amr"}, 40010),
    "video": (10 * MB, {"mp4"}, 40011),
    "thumb": (64 * 1024, {"jpg", "jpeg"}, 40012),
}
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "amr": "audio/amr",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "wma": "audio/x-ms-wma",
    "mp4": "video/mp4",
}


def sniff(data):
    """The file format from its first bytes, or "" when unknown."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"\x30\x26\xb2\x75"):
        return "wma"
    if head.startswith(b"BM"):
        return "bmp"
    return ""


def check_upload(kind, *, lifetime, filename, data):
    """Accept an uploaded file as media of `kind`; returns its format (e.g. "png").

    The bytes decide when they are recognisable; otherwise the file name's
    extension does, so a file of the wrong kind is refused (40005) either way.
    """
    limits = TEMPORARY_LIMITS if lifetime == "temporary" else PERMANENT_LIMITS
    if kind not in limits:
        raise ApiError(40004, f"type {kind!r}")
    if data is None:
        raise ApiError(41005)
    max_bytes, formats, size_errcode = limits[kind]
    if not data:
        raise ApiError(41005, "empty file")
    fmt = sniff(data)
    if not fmt and "." in (filename or ""):
        fmt = filename.rsplit(".", 1)[-1].lower()
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in formats:
        raise ApiError(40005, f"{kind} must be {'/'.join(sorted(formats))}")
    if len(data) > max_bytes:
        raise ApiError(size_errcode, f"{len(data)} bytes > {max_bytes}")
    return fmt


def new_media_id():
    return secrets.token_urlsafe(48)
