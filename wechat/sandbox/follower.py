"""Act as a follower on the sandbox platform, and look at what the platform saw.

This is the Python API other tests use (sending, inbox, browser tests, the
benchmarks). Everything works across processes because it all goes through
the database and real HTTP.

Acting as a follower::

    from wechat.sandbox import follower as wx

    result = wx.act(account, "o_user_1", "text", content="你好 😀")
    result.delivered          # True when the webhook answered `success` / empty
    result.xml                # the plaintext push XML
    result.push               # the SandboxPush row (status, attempts, response…)

``act(account, openid, action, *, webhook_base=None, deliver=True, client=None,
mode=None, now=None, timeout=5.0, **fields) -> PushResult``

* records the action in the platform's own window book (`SandboxFollower`,
  rules of §3 through `wechat.window`) — this is what custom/send is gated on;
* builds the push XML (§6.2–§6.4), signs it (plain / compatible / safe, as the
  account is set, or `mode=`) with `wechat.sandbox.signing`;
* when `deliver` is true, POSTs it to ``{webhook_base}/wechat/<appid>/``,
  re-posting when no answer comes within `timeout` seconds (§6.5: up to 3
  re-posts, 4 deliveries in all). `webhook_base` defaults to the setting
  ``SANDBOX_WEBHOOK_BASE``, else to ``WECHAT_API_BASE`` without its
  ``/sandbox`` suffix. Pass ``client=`` (a Django test ``Client``) to deliver
  in-process instead of over HTTP (one attempt).

Actions and their fields:

==================  ===============================================================
``text``            ``content``; optional ``bizmsgmenuid`` (a msgmenu choice, §6.3)
``image``           optional ``data`` (bytes) and ``filename``; default a small PNG
``voice``           optional ``data``, ``format`` ("amr"), ``recognition``
``location``        ``latitude``, ``longitude``, optional ``scale``, ``label``
``link``            ``title``, ``description``, ``url``
``click``           ``key`` — a CLICK menu item (3 sends / 1 min)
``view``            ``url`` — a VIEW menu item (opens no window)
``subscribe``       optional ``scene`` (a parametric QR code: EventKey qrscene_…)
``scan``            ``scene`` — an already-following user scans a QR code
``unsubscribe``
``location_report`` ``latitude``, ``longitude``, ``precision`` (LOCATION event)
==================  ===============================================================

A new openid acting for the first time is taken to be an existing follower
(except for ``subscribe``). A follower who unsubscribed must ``subscribe``
again before sending messages (`FollowerError`).

Looking at the platform::

    wx.delivered(account, openid)           # SandboxMessage rows: what custom/send accepted
    wx.calls("/cgi-bin/message/custom/send") # SandboxCall rows: every request and answer
    wx.calls(...).last().json                # the exact request body as JSON
    wx.get(account, openid)                 # the SandboxFollower (window book, typing)
    wx.create_follower(account, openid)     # a user who does not follow yet (43004 on send)
    wx.pushes(account, openid)              # the SandboxPush rows sent to the webhook

Faults (see `wechat.sandbox.faults` for the kinds)::

    wx.inject_fault("busy", count=2, endpoint="/cgi-bin/message/custom/send")
    wx.inject_fault("read_timeout", delay_ms=3000)
    wx.clear_faults()

Fixtures::

    wx.make_media(account, "image")         # a SandboxMedia with a live media_id
    wx.issue_token(account)                 # a valid stable access token string
    wx.age(account, openid, seconds=3600)   # move the follower's window book back in time
"""

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.db import close_old_connections, connections, transaction

from wechat import window
from wechat.sandbox import faults, media_samples, platform, rules, signing
from wechat.sandbox.models import SandboxCall, SandboxFollower, SandboxMedia, SandboxMessage, SandboxPush, SandboxToken

log = logging.getLogger(__name__)

PUSH_TIMEOUT = 5.0  # WeChat waits 5 s for an answer (§6.5)
MAX_DELIVERIES = 4  # the first post and up to 3 re-posts (§6.5)
ACTIONS = (
    "text",
    "image",
    "voice",
    "location",
    "link",
    "click",
    "view",
    "subscribe",
    "scan",
    "unsubscribe",
    "location_report",
)

inject_fault = faults.inject
clear_faults = faults.clear


class FollowerError(ValueError):
    """The follower cannot do that (unknown action, missing field, not following)."""


@dataclass
class PushResult:
    push: SandboxPush
    xml: str
    delivered: bool
    http_status: int | None
    body: bytes
    attempts: int
    error: str = ""


def act(
    account,
    openid,
    action,
    *,
    webhook_base=None,
    deliver=True,
    client=None,
    mode=None,
    now=None,
    timeout=PUSH_TIMEOUT,
    **fields,
):
    """Do `action` as follower `openid` of `account`; see the module docstring."""
    push = record(account, openid, action, mode=mode, now=now, base=_base_or_none(webhook_base), **fields)
    if not deliver:
        push.status = SandboxPush.Status.NOT_SENT
        push.save(update_fields=["status"])
        return PushResult(push, push.xml, False, None, b"", 0)
    return deliver_push(push, webhook_base=webhook_base, client=client, timeout=timeout)


def record(account, openid, action, *, mode=None, now=None, base=None, **fields):
    """Book the action on the platform and store its push (not yet delivered)."""
    if action not in ACTIONS:
        raise FollowerError(f"未知的粉丝动作：{action}")
    if not openid:
        raise FollowerError("需要粉丝的 OpenID")
    at = now or platform.now()
    with transaction.atomic():
        follower = _follower(account, openid, action, at)
        msg_type, event, xml_fields, shown = _build(account, action, fields, at, base)
        msg_id = _msg_id() if msg_type != "event" else ""
        if msg_id:
            xml_fields["MsgId"] = int(msg_id)
        xml = signing.push_xml(
            to_user=account.original_id or account.appid,
            from_user=openid,
            msg_type=msg_type,
            create_time=int(at.timestamp()),
            fields=xml_fields,
        )
        _book(follower, msg_type, event, shown, at)
        return SandboxPush.objects.create(
            account=account,
            follower=follower,
            openid=openid,
            action=action,
            msg_type=msg_type,
            event=event,
            msg_id=msg_id,
            fields=shown,
            xml=xml,
            mode=mode or account.crypto_mode,
            created_at=at,
        )


def create_follower(account, openid, *, nickname="", now=None):
    """A WeChat user the platform knows who does not follow the account yet."""
    follower, _created = SandboxFollower.objects.get_or_create(
        account=account, openid=openid, defaults={"nickname": nickname, "created_at": now or platform.now()}
    )
    return follower


def _follower(account, openid, action, at):
    # Someone the platform has not seen yet is a follower from before the
    # sandbox existed, unless they are following right now.
    SandboxFollower.objects.get_or_create(
        account=account,
        openid=openid,
        defaults={
            "subscribed": action != "subscribe",
            "subscribe_time": at if action != "subscribe" else None,
            "subscribe_scene": "ADD_SCENE_SEARCH",
            "created_at": at,
        },
    )
    follower = SandboxFollower.objects.select_for_update().get(account=account, openid=openid)
    if not follower.subscribed and action not in ("subscribe", "unsubscribe"):
        raise FollowerError("粉丝未关注公众号，请先关注再发送消息")
    return follower


def _msg_id():
    # 64-bit message ids (§6.2), as text like the console stores them.
    return str(10**16 + secrets.randbelow(9 * 10**17))


def _need(fields, name):
    value = fields.get(name)
    if value in (None, ""):
        raise FollowerError(f"缺少字段 {name}")
    return value


def _build(account, action, fields, at, base):
    """(MsgType, Event, XML fields, what to show in the simulator)."""
    if action == "text":
        content = str(_need(fields, "content"))
        xml = {"Content": content}
        shown = {"content": content}
        if fields.get("bizmsgmenuid"):
            xml["bizmsgmenuid"] = str(fields["bizmsgmenuid"])
            shown["bizmsgmenuid"] = xml["bizmsgmenuid"]
        return "text", "", xml, shown
    if action in ("image", "voice"):
        return _media_action(account, action, fields, at, base)
    if action == "location":
        lat, lng = str(_need(fields, "latitude")), str(_need(fields, "longitude"))
        label = str(fields.get("label", ""))
        scale = str(fields.get("scale", "15"))
        xml = {"Location_X": lat, "Location_Y": lng, "Scale": scale, "Label": label}
        return "location", "", xml, {"latitude": lat, "longitude": lng, "scale": scale, "label": label}
    if action == "link":
        shown = {
            "title": str(_need(fields, "title")),
            "description": str(fields.get("description", "")),
            "url": str(_need(fields, "url")),
        }
        return "link", "", {"Title": shown["title"], "Description": shown["description"], "Url": shown["url"]}, shown
    if action == "click":
        key = str(_need(fields, "key"))
        return "event", "CLICK", {"Event": "CLICK", "EventKey": key}, {"key": key, "label": fields.get("label", "")}
    if action == "view":
        url = str(_need(fields, "url"))
        return "event", "VIEW", {"Event": "VIEW", "EventKey": url}, {"url": url}
    if action == "subscribe":
        scene = str(fields.get("scene", "") or "")
        xml = {"Event": "subscribe", "EventKey": f"qrscene_{scene}" if scene else ""}
        if scene:
            xml["Ticket"] = _ticket()
        return "event", "subscribe", xml, {"scene": scene}
    if action == "scan":
        scene = str(_need(fields, "scene"))
        return "event", "SCAN", {"Event": "SCAN", "EventKey": scene, "Ticket": _ticket()}, {"scene": scene}
    if action == "unsubscribe":
        return "event", "unsubscribe", {"Event": "unsubscribe", "EventKey": ""}, {}
    # location_report
    shown = {
        "latitude": str(_need(fields, "latitude")),
        "longitude": str(_need(fields, "longitude")),
        "precision": str(fields.get("precision", "65.0")),
    }
    xml = {
        "Event": "LOCATION",
        "Latitude": shown["latitude"],
        "Longitude": shown["longitude"],
        "Precision": shown["precision"],
    }
    return "event", "LOCATION", xml, shown


def _ticket():
    return "gQ" + secrets.token_urlsafe(40)


def _media_action(account, action, fields, at, base):
    if action == "image":
        # A different colour each time, so the agent can tell photos apart.
        color = tuple(secrets.randbelow(160) for _ in range(3))
        data = fields.get("data") or media_samples.png(color=color)
        filename = fields.get("filename") or "photo.png"
    else:
        data = fields.get("data") or media_samples.amr()
        filename = fields.get("filename") or "voice.amr"
    fmt = rules.sniff(data) or filename.rsplit(".", 1)[-1].lower()
    media = platform.follower_media(
        account,
        kind=action,
        data=data,
        filename=filename,
        content_type=rules.CONTENT_TYPES.get(fmt, "application/octet-stream"),
        at=at,
    )
    if action == "image":
        pic_url = f"{(base or 'http://127.0.0.1')}/sandbox/files/{media.media_id}"
        return (
            "image",
            "",
            {"PicUrl": pic_url, "MediaId": media.media_id},
            {"media_id": media.media_id, "pic_url": pic_url},
        )
    xml = {"MediaId": media.media_id, "Format": str(fields.get("format") or fmt or "amr")}
    shown = {"media_id": media.media_id, "format": xml["Format"]}
    if fields.get("recognition"):
        xml["Recognition"] = str(fields["recognition"])
        shown["recognition"] = xml["Recognition"]
    return "voice", "", xml, shown


def _book(follower, msg_type, event, shown, at):
    """The platform's own record of the action: window (§3), following, typing (§4)."""
    state = window.apply_action(follower.window_state(), msg_type=msg_type, event=event, at=at)
    follower.set_window_state(state)
    fields = list(SandboxFollower.WINDOW_FIELDS)
    if event == "subscribe":
        follower.subscribe_time = at
        follower.unsubscribe_time = None
        follower.qr_scene = shown.get("scene", "")
        follower.subscribe_scene = "ADD_SCENE_QR_CODE" if follower.qr_scene else "ADD_SCENE_SEARCH"
        fields += ["subscribe_time", "unsubscribe_time", "qr_scene", "subscribe_scene"]
    elif event == "unsubscribe":
        follower.unsubscribe_time = at
        follower.typing_until = None
        fields += ["unsubscribe_time", "typing_until"]
    if window.classify(msg_type, event) in (window.LONG, window.SHORT):
        follower.last_exchange_at = at
        fields.append("last_exchange_at")
    follower.save(update_fields=fields)


# --- delivery (§6.5) --------------------------------------------------------------


def resolve_webhook_base(explicit=None):
    """Where pushes go: the argument, SANDBOX_WEBHOOK_BASE, or WECHAT_API_BASE minus /sandbox."""
    base = _base_or_none(explicit)
    if base is None:
        raise FollowerError(
            "不知道把推送发到哪里：请传入 webhook_base，或设置 SANDBOX_WEBHOOK_BASE / WECHAT_API_BASE（…/sandbox）"
        )
    return base


def _base_or_none(explicit):
    if explicit:
        return explicit.rstrip("/")
    configured = getattr(settings, "SANDBOX_WEBHOOK_BASE", "")
    if configured:
        return configured.rstrip("/")
    api_base = getattr(settings, "WECHAT_API_BASE", "").rstrip("/")
    if api_base.endswith("/sandbox"):
        return api_base[: -len("/sandbox")]
    return None


def deliver_push(push, *, webhook_base=None, client=None, timeout=PUSH_TIMEOUT, max_deliveries=MAX_DELIVERIES):
    """POST a recorded push to the console's webhook, with WeChat's re-posts."""
    account = push.account
    query, body = signing.signed_request(
        token=account.token,
        body=push.xml,
        appid=account.appid,
        aes_key=account.encoding_aes_key,
        mode=push.mode,
        openid=push.openid,
    )
    path = f"/wechat/{account.appid}/"
    if client is not None:
        response = client.post(f"{path}?{urlencode(query)}", data=body, content_type="text/xml")
        return _finish(push, f"{path}", response.status_code, response.content, 1, "")
    url = resolve_webhook_base(webhook_base) + path
    error = ""
    attempts = 0
    with requests.Session() as session:
        while attempts < max_deliveries:
            attempts += 1
            try:
                response = session.post(
                    url, params=query, data=body, headers={"Content-Type": "text/xml"}, timeout=(3.0, timeout)
                )
            except requests.RequestException as exc:
                # No answer in time (or no connection): WeChat posts again.
                error = f"{type(exc).__name__}"
                continue
            return _finish(push, url, response.status_code, response.content, attempts, "")
    return _finish(push, url, None, b"", attempts, error or "no answer")


def _finish(push, url, status, content, attempts, error):
    if status is None:
        outcome = SandboxPush.Status.FAILED
    elif status == 200:
        outcome = SandboxPush.Status.DELIVERED
    else:
        outcome = SandboxPush.Status.REFUSED
    push.url = url
    push.status = outcome
    push.http_status = status
    push.response = content[:2000].decode("utf-8", "replace")
    push.attempts = attempts
    push.error = error[:255]
    push.save(update_fields=["url", "status", "http_status", "response", "attempts", "error"])
    if outcome != SandboxPush.Status.DELIVERED:
        log.warning("sandbox push %s %s: status=%s error=%s", push.pk, outcome, status, error)
    return PushResult(push, push.xml, outcome == SandboxPush.Status.DELIVERED, status, content, attempts, error)


def deliver_in_background(push_id, *, webhook_base=None):
    """Deliver from a thread so the simulator page answers at once (re-posts can take 20 s)."""

    def run():
        close_old_connections()
        try:
            push = SandboxPush.objects.select_related("account").get(pk=push_id)
            deliver_push(push, webhook_base=webhook_base)
        except Exception:
            log.exception("sandbox push %s could not be delivered", push_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=f"sandbox-push-{push_id}", daemon=True)
    thread.start()
    return thread


# --- looking at the platform --------------------------------------------------------


def get(account, openid):
    return SandboxFollower.objects.filter(account=account, openid=openid).first()


def delivered(account=None, openid=None):
    qs = SandboxMessage.objects.all()
    if account is not None:
        qs = qs.filter(account=account)
    if openid is not None:
        qs = qs.filter(openid=openid)
    return qs.order_by("id")


def calls(path=None, account=None):
    qs = SandboxCall.objects.all()
    if path is not None:
        qs = qs.filter(path=path)
    if account is not None:
        qs = qs.filter(account=account)
    return qs.order_by("id")


def pushes(account=None, openid=None):
    qs = SandboxPush.objects.all()
    if account is not None:
        qs = qs.filter(account=account)
    if openid is not None:
        qs = qs.filter(openid=openid)
    return qs.order_by("id")


# --- fixtures -------------------------------------------------------------------------


def make_media(account, kind="image", *, data=None, filename=None, lifetime=SandboxMedia.Lifetime.TEMPORARY, now=None):
    """A media_id the platform knows, without going through HTTP."""
    at = now or platform.now()
    defaults = {
        "image": (media_samples.png, "image.png", "image/png"),
        "thumb": (lambda: b"\xff\xd8\xff\xe0" + bytes(60), "thumb.jpg", "image/jpeg"),
        "voice": (media_samples.amr, "voice.amr", "audio/amr"),
        "video": (lambda: b"\x00\x00\x00\x18ftypmp42" + bytes(64), "video.mp4", "video/mp4"),
    }
    make, default_name, content_type = defaults[kind]
    data = data if data is not None else make()
    return SandboxMedia.objects.create(
        account=account,
        media_id=rules.new_media_id(),
        kind=kind,
        lifetime=lifetime,
        filename=filename or default_name,
        content_type=content_type,
        size=len(data),
        data=data,
        created_at=at,
        expires_at=at + rules.MEDIA_LIFETIME if lifetime == SandboxMedia.Lifetime.TEMPORARY else None,
    )


def issue_token(account, *, now=None):
    """A valid stable access token for `account`, as /cgi-bin/stable_token would give."""
    at = now or platform.now()
    token = (
        SandboxToken.objects.filter(
            account=account,
            kind=SandboxToken.Kind.STABLE,
            valid_until__isnull=True,
            expires_at__gt=at + rules.STABLE_ROLL_BEFORE,
        )
        .order_by("-issued_at")
        .first()
    )
    if token is None:
        token = SandboxToken.objects.create(
            account=account,
            kind=SandboxToken.Kind.STABLE,
            value=rules.new_token_value(),
            issued_at=at,
            expires_at=at + rules.TOKEN_LIFETIME,
        )
    return token.value


def age(account, openid, *, seconds):
    """Pretend the follower acted `seconds` earlier: moves the window book back in time."""
    follower = SandboxFollower.objects.get(account=account, openid=openid)
    delta = timedelta(seconds=seconds)
    for name in (
        "long_opened_at",
        "long_expires_at",
        "short_opened_at",
        "short_expires_at",
        "last_exchange_at",
        "typing_until",
    ):
        value = getattr(follower, name)
        if value is not None:
            setattr(follower, name, value - delta)
    follower.save()
    return follower
