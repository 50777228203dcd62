"""The fake platform's endpoints as service functions over the sandbox models.

Each function takes what the HTTP request carried and returns a `Reply`; the
rules themselves are the pure functions of `wechat.sandbox.rules`. The views
in `wechat.sandbox.views` only translate HTTP, record the call and apply
faults.
"""

import hmac
import json
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from wechat import rawsql, window
from wechat.models import OfficialAccount
from wechat.sandbox import rules
from wechat.sandbox.models import SandboxFollower, SandboxMedia, SandboxMessage, SandboxToken
from wechat.sandbox.rules import ApiError

JSON_CONTENT_TYPE = "application/json; encoding=utf-8"


def now():
    """The platform's clock; tests running in-process may patch it."""
    return timezone.now()


@dataclass
class Reply:
    status: int = 200
    data: dict | None = None
    content: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: dict = field(default_factory=dict)

    @property
    def errcode(self):
        if self.data is None:
            return None
        return self.data.get("errcode", 0)

    @property
    def errmsg(self):
        return (self.data or {}).get("errmsg", "")

    def body(self):
        if self.data is not None:
            return json.dumps(self.data, ensure_ascii=False).encode("utf-8")
        return self.content


OK = {"errcode": 0, "errmsg": "ok"}


def error_reply(exc):
    return Reply(data={"errcode": exc.errcode, "errmsg": exc.errmsg(rules.new_rid())})


# --- tokens (§1) ---------------------------------------------------------------


def _app(appid, secret, *, wrong_secret_errcode):
    if not appid:
        raise ApiError(41002)
    if not secret:
        raise ApiError(41004)
    account = OfficialAccount.objects.filter(appid=appid).first()
    if account is None:
        raise ApiError(40013)
    if not account.app_secret or not _same(secret, account.app_secret):
        raise ApiError(wrong_secret_errcode)
    return account


def _same(a, b):
    return hmac.compare_digest(str(a).encode("utf-8"), str(b).encode("utf-8"))


def _today_start(at):
    local = timezone.localtime(at)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def classic_token(query, *, at):
    """GET /cgi-bin/token (§1.1): every call mints a token and retires the previous ones."""
    if query.get("grant_type") != "client_credential":
        raise ApiError(40002)
    # A wrong secret on the classic endpoint answers 40125 "invalid appsecret".
    account = _app(query.get("appid", ""), query.get("secret", ""), wrong_secret_errcode=40125)
    with transaction.atomic():
        _lock(account)
        issued_today = SandboxToken.objects.filter(
            account=account, kind=SandboxToken.Kind.CLASSIC, issued_at__gte=_today_start(at)
        ).count()
        if issued_today >= rules.CLASSIC_PER_DAY:
            raise ApiError(45009)
        # The overlap: old tokens keep working ~5 minutes, then answer 40001.
        for old in SandboxToken.objects.select_for_update().filter(
            account=account, kind=SandboxToken.Kind.CLASSIC, valid_until__isnull=True
        ):
            old.valid_until = min(old.expires_at, at + rules.CLASSIC_OVERLAP)
            old.save(update_fields=["valid_until"])
        token = _mint(account, SandboxToken.Kind.CLASSIC, at)
    return Reply(data={"access_token": token.value, "expires_in": _expires_in(token, at)}), account


def stable_token(method, raw, *, at):
    """POST /cgi-bin/stable_token (§1.2): the same token until it nears expiry."""
    if method != "POST":
        raise ApiError(43002)
    body = rules.parse_json_body(raw)
    if body.get("grant_type") != "client_credential":
        raise ApiError(40002)
    # The stable endpoint answers a wrong secret with 40001 "invalid credential".
    account = _app(body.get("appid", ""), body.get("secret", ""), wrong_secret_errcode=40001)
    force = body.get("force_refresh", False)
    if not isinstance(force, bool):
        raise ApiError(47001, "force_refresh must be a boolean")
    with transaction.atomic():
        _lock(account)
        current = (
            SandboxToken.objects.select_for_update()
            .filter(account=account, kind=SandboxToken.Kind.STABLE, valid_until__isnull=True, expires_at__gt=at)
            .order_by("-issued_at")
            .first()
        )
        forced_today = SandboxToken.objects.filter(
            account=account, kind=SandboxToken.Kind.STABLE, forced=True, issued_at__gte=_today_start(at)
        ).count()
        verdict, token = rules.stable_decision(current, force=force, now=at, forced_today=forced_today)
        if verdict == "mint":
            if current is not None:
                # Force mode kills the old token now; a normal roll leaves it
                # alive until its own expiry (at most 5 minutes away).
                current.valid_until = at if force else current.expires_at
                current.save(update_fields=["valid_until"])
            token = _mint(account, SandboxToken.Kind.STABLE, at, forced=force)
    return Reply(data={"access_token": token.value, "expires_in": _expires_in(token, at)}), account


def _lock(account):
    # One token decision per account at a time: two processes asking for a
    # stable token at once must get the same one, as on the real platform.
    OfficialAccount.objects.select_for_update().filter(pk=account.pk).first()


def _mint(account, kind, at, *, forced=False):
    return SandboxToken.objects.create(
        account=account,
        kind=kind,
        value=rules.new_token_value(),
        issued_at=at,
        expires_at=at + rules.TOKEN_LIFETIME,
        forced=forced,
    )


def _expires_in(token, at):
    return max(int((token.expires_at - at).total_seconds()), 0)


def find_token(value):
    """The token row issued under `value` (with its account), or None."""
    if not value:
        return None
    return SandboxToken.objects.select_related("account").filter(value=value).first()


def token_owner(value):
    """The account a token value was issued to (None for garbage), for fault scoping."""
    token = find_token(value)
    return token.account if token else None


def check_token(value, token, *, at):
    """The account calling with access_token `value`, its row `token` read by `find_token` (§1.3 errcodes otherwise)."""
    if not value:
        raise ApiError(41001)
    problem = rules.token_problem(token, at)
    if problem:
        raise ApiError(problem)
    return token.account


def expire_token(value, *, at):
    """Forced expiry: the token dies now, as if its 7200 s had run out."""
    SandboxToken.objects.filter(value=value, expires_at__gt=at).update(expires_at=at)


# --- custom/send (§2, §3) ----------------------------------------------------------


def send_custom(account, raw, *, at):
    message = rules.parse_custom_message(raw)
    with transaction.atomic():
        follower = SandboxFollower.objects.select_for_update().filter(account=account, openid=message.touser).first()
        if follower is None:
            raise ApiError(40003)
        if not follower.subscribed:
            # Someone who unfollowed gets the window error; someone who never
            # followed is "require subscribe" (§3.2).
            raise ApiError(45015 if follower.unsubscribe_time else 43004)
        for ref in message.media:
            media = SandboxMedia.objects.filter(account=account, media_id=ref.media_id).first()
            rules.check_media_ref(ref, media, at)
        decision, state = window.reserve(follower.window_state(), at)
        if not decision.allowed:
            raise ApiError(rules.window_errcode(decision.reason))
        follower.set_window_state(state)
        follower.last_exchange_at = at
        follower.typing_until = None  # any message ends the typing state (§4)
        # The busiest path of the fake: its writes skip the ORM's compiler.
        changed = [*SandboxFollower.WINDOW_FIELDS, "last_exchange_at", "typing_until"]
        rawsql.update(SandboxFollower, follower.pk, {name: getattr(follower, name) for name in changed})
        rawsql.insert(
            SandboxMessage(
                account=account,
                follower=follower,
                openid=message.touser,
                msgtype=message.msgtype,
                payload=message.payload,
                body=message.body,
                kf_account=message.kf_account,
                created_at=at,
            )
        )
    return Reply(data=dict(OK))


def typing(account, raw, *, at):
    body = rules.parse_json_body(raw)
    openid = body.get("touser")
    if not isinstance(openid, str) or not openid:
        raise ApiError(40003, "touser missing")
    with transaction.atomic():
        follower = SandboxFollower.objects.select_for_update().filter(account=account, openid=openid).first()
        if follower is None:
            raise ApiError(40003)
        if not follower.subscribed:
            raise ApiError(45015 if follower.unsubscribe_time else 43004)
        typing_until = rules.typing_decision(
            body.get("command"), last_exchange_at=follower.last_exchange_at, typing_until=follower.typing_until, now=at
        )
        follower.typing_until = typing_until
        follower.save(update_fields=["typing_until"])
    return Reply(data=dict(OK))


# --- media (§8) ------------------------------------------------------------------


def upload_media(account, kind, upload, *, at):
    """POST /cgi-bin/media/upload: temporary media, 3 days (§8.1)."""
    media = _store(account, kind, upload, lifetime=SandboxMedia.Lifetime.TEMPORARY, at=at)
    data = {"type": kind, "media_id": media.media_id, "created_at": int(at.timestamp())}
    if kind == "thumb":
        # The real platform names a thumb's id thumb_media_id; keep both keys.
        data["thumb_media_id"] = media.media_id
    return Reply(data=data)


def add_material(account, kind, upload, description, *, at, file_url):
    """POST /cgi-bin/material/add_material: permanent media (§8.2)."""
    title = introduction = ""
    if kind == "video":
        # Videos need the form field description = {"title", "introduction"}.
        try:
            info = json.loads(description or "")
        except ValueError as exc:
            raise ApiError(47001, "video needs description JSON with title and introduction") from exc
        if not isinstance(info, dict) or not isinstance(info.get("title"), str) or not info.get("title"):
            raise ApiError(47001, "video needs description JSON with title and introduction")
        title, introduction = info["title"], str(info.get("introduction", ""))
    media = _store(
        account, kind, upload, lifetime=SandboxMedia.Lifetime.PERMANENT, at=at, title=title, introduction=introduction
    )
    data = {"media_id": media.media_id}
    if kind == "image":
        data["url"] = file_url(media.media_id)
    return Reply(data=data)


def del_material(account, raw):
    """POST /cgi-bin/material/del_material: drop permanent media (§8.2); 40007 when there is none."""
    media_id = rules.parse_json_body(raw).get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise ApiError(40007, "media_id missing")
    deleted, _ = SandboxMedia.objects.filter(
        account=account, media_id=media_id, lifetime=SandboxMedia.Lifetime.PERMANENT
    ).delete()
    if not deleted:
        raise ApiError(40007)
    return Reply(data=dict(OK))


def _store(account, kind, upload, *, lifetime, at, title="", introduction=""):
    if upload is None:
        raise ApiError(41005)
    filename = upload.name or ""
    data = upload.read()
    fmt = rules.check_upload(kind, lifetime=lifetime, filename=filename, data=data)
    return SandboxMedia.objects.create(
        account=account,
        media_id=rules.new_media_id(),
        kind=kind,
        lifetime=lifetime,
        origin=SandboxMedia.Origin.UPLOAD,
        filename=filename,
        content_type=rules.CONTENT_TYPES.get(fmt, "application/octet-stream"),
        size=len(data),
        data=data,
        title=title,
        introduction=introduction,
        created_at=at,
        expires_at=at + rules.MEDIA_LIFETIME if lifetime == SandboxMedia.Lifetime.TEMPORARY else None,
    )


def get_media(account, media_id, *, at, file_url):
    """GET /cgi-bin/media/get: bytes, or JSON video_url; errors as JSON with HTTP 200 (§8.1)."""
    if not media_id:
        raise ApiError(40007, "media_id missing")
    media = SandboxMedia.objects.filter(
        account=account, media_id=media_id, lifetime=SandboxMedia.Lifetime.TEMPORARY
    ).first()
    if media is None or media.is_expired(at):
        raise ApiError(40007)
    if media.kind == SandboxMedia.Kind.VIDEO:
        return Reply(data={"video_url": file_url(media.media_id)})
    return Reply(
        content=bytes(media.data),
        content_type=media.content_type or "application/octet-stream",
        headers={"Content-disposition": f'attachment; filename="{_download_name(media)}"'},
    )


def _download_name(media):
    extension = {v: k for k, v in rules.CONTENT_TYPES.items()}.get(media.content_type, "bin")
    return f"{media.media_id[:24]}.{extension}"


def follower_media(account, *, kind, data, filename, content_type, at):
    """Media a follower sent (image / voice): a temporary media_id the console can fetch."""
    return SandboxMedia.objects.create(
        account=account,
        media_id=rules.new_media_id(),
        kind=kind,
        lifetime=SandboxMedia.Lifetime.TEMPORARY,
        origin=SandboxMedia.Origin.FOLLOWER,
        filename=filename,
        content_type=content_type,
        size=len(data),
        data=data,
        created_at=at,
        expires_at=at + rules.MEDIA_LIFETIME,
    )


# --- user/info (§9) --------------------------------------------------------------


def user_info(account, query):
    openid = query.get("openid", "")
    if not openid:
        raise ApiError(40003, "openid missing")
    lang = query.get("lang", "zh_CN")
    if lang not in ("zh_CN", "zh_TW", "en"):
        lang = "zh_CN"
    follower = SandboxFollower.objects.filter(account=account, openid=openid).first()
    if follower is None:
        raise ApiError(40003)
    if not follower.subscribed:
        # §9: a non-follower gets subscribe 0 and nothing else.
        return Reply(data={"subscribe": 0, "openid": openid})
    data = {
        "subscribe": 1,
        "openid": openid,
        "language": lang,
        "subscribe_time": int((follower.subscribe_time or follower.created_at).timestamp()),
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE"
        if follower.qr_scene
        else (follower.subscribe_scene or "ADD_SCENE_SEARCH"),
        "qr_scene": int(follower.qr_scene) if follower.qr_scene.isdigit() else 0,
        "qr_scene_str": "" if follower.qr_scene.isdigit() else follower.qr_scene,
    }
    return Reply(data=data)


def media_file(media_id, *, at):
    """The bytes behind a media URL (video_url, permanent image url, the simulator)."""
    media = SandboxMedia.objects.filter(media_id=media_id).first()
    if media is None or media.is_expired(at):
        return None
    return media
