"""The callback of §6: verify, decrypt, parse, store, answer — nothing slow.

`handle` is a plain function of (appid, method, query, body) so the Django view
and the ASGI fast path share it. Every refusal is logged with its reason and
answered with a 4xx, never a 500; secrets never reach the log.
"""

import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError

from wechat import crypto, inbound
from wechat.models import OfficialAccount
from wechat.pushes import MalformedPush, parse_push, parse_xml

log = logging.getLogger("wechat.webhook")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


# WeChat sends UTF-8 only (§6.2). A body in another encoding — a UTF-16/32
# byte-order mark, or a declaration naming another charset — would be decoded
# into something the follower never wrote, so it is refused, not stored.
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _require_utf8(xml):
    if xml.startswith(_BOMS):
        raise MalformedPush("body is not UTF-8 (byte-order mark)")
    declared = _DECLARED_ENCODING.match(xml[:200])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise MalformedPush("body declares an encoding other than UTF-8")


SUCCESS = Answer(200, b"success")
EMPTY = Answer(200, b"")


def refuse(status, reason, appid, **context):
    details = " ".join(f"{k}={v}" for k, v in context.items())
    log.warning("webhook refused %s: %s appid=%s %s", status, reason, appid, details)
    messages = {
        400: b"bad request",
        403: b"forbidden",
        404: b"not found",
        405: b"method not allowed",
        413: b"too large",
    }
    return Answer(status, messages.get(status, b"refused"))


# Active accounts by appid, per process, for a few seconds: a push should not
# pay a query for a row that changes a few times a year. A refusal is never
# decided on a cached row — it is re-checked against the database first — so a
# new token or AES key works at once; a deactivation or a switch to safe mode
# takes effect within WECHAT_ACCOUNT_CACHE_SECONDS (and at once in the process
# that saved it, see `forget_account`).
_accounts = {}


def _account(appid, *, fresh=False):
    """(account or None, whether it came from the cache)."""
    ttl = settings.WECHAT_ACCOUNT_CACHE_SECONDS
    hit = _accounts.get(appid)
    if hit is not None and not fresh and time.monotonic() - hit[1] < ttl:
        return hit[0], True
    account = OfficialAccount.objects.filter(appid=appid, is_active=True).first()
    if account is None or ttl <= 0:
        _accounts.pop(appid, None)
    else:
        _accounts[appid] = (account, time.monotonic())
    return account, False


def forget_account(appid=None):
    """Drop the cached account (all of them without `appid`)."""
    if appid is None:
        _accounts.clear()
    else:
        _accounts.pop(appid, None)


def handle(appid, method, query, body, *, now=None, content_length=None):
    """Answer one callback request. `query` is a mapping of the query string."""
    now = now if now is not None else time.time()
    if method not in ("GET", "POST"):
        return refuse(405, "method", appid, method=method)
    limit = settings.WECHAT_MAX_BODY_BYTES
    if method == "POST" and ((content_length or 0) > limit or len(body) > limit):
        return refuse(413, "body too large", appid, size=max(content_length or 0, len(body)))
    account, cached = _account(appid)
    answer = _answer(appid, account, method, query, body, now, final=not cached)
    if answer is None:
        # Refused on a cached row, or the cached row is gone (the store hit a
        # foreign key): decide again on the row as it is now.
        account, _ = _account(appid, fresh=True)
        answer = _answer(appid, account, method, query, body, now, final=True)
    return answer


def _answer(appid, account, method, query, body, now, *, final):
    """The Answer, or None when a refusal or failure was decided on a cached row (not final)."""
    if account is None:
        return refuse(404, "unknown appid", appid)
    outcome = _verify(account, method, query, body, now)
    if isinstance(outcome, _Refusal):
        return refuse(outcome.status, outcome.reason, appid, **outcome.context) if final else None
    if isinstance(outcome, Answer):
        return outcome
    try:
        inbound.receive(account=account, push=outcome.push, raw_xml=outcome.xml.decode("utf-8", "replace"))
    except IntegrityError:
        if final:
            raise
        return None  # rolled back, nothing stored
    # In safe mode an empty body is the acknowledgement that needs no
    # encryption (§7.4); otherwise the recommended literal `success` (§6.5).
    return EMPTY if outcome.safe else SUCCESS


@dataclass(frozen=True)
class _Refusal:
    status: int
    reason: str
    context: dict


@dataclass(frozen=True)
class _Verified:
    push: object
    xml: bytes
    safe: bool


def _refusal(status, reason, **context):
    return _Refusal(status, reason, context)


def _verify(account, method, query, body, now):
    """A _Verified push, the Answer to a URL check, or a _Refusal. Logs nothing."""
    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if not crypto.check_signature(account.token, query.get("signature", ""), timestamp, nonce):
        return _refusal(403, "bad or missing signature")
    try:
        skew = abs(now - int(timestamp))
    except ValueError:
        return _refusal(403, "timestamp is not a number")
    if skew > settings.WECHAT_TIMESTAMP_TOLERANCE:
        return _refusal(403, "timestamp outside tolerance", skew=int(skew))

    if method == "GET":
        # URL verification: echo `echostr` verbatim (§6.1), also in safe mode.
        return Answer(200, query.get("echostr", "").encode("utf-8"))

    safe = query.get("encrypt_type", "") == "aes"
    try:
        if safe:
            xml = _decrypt(account, query, body, timestamp, nonce)
            if isinstance(xml, _Refusal):
                return xml
        else:
            if account.crypto_mode == OfficialAccount.CryptoMode.SAFE:
                return _refusal(400, "plaintext push to a safe-mode account")
            xml = body
        _require_utf8(xml)
        push = parse_push(xml)
    except MalformedPush as exc:
        return _refusal(400, str(exc))

    if account.original_id and push.to_user and push.to_user != account.original_id:
        return _refusal(400, "ToUserName is not this account", to=push.to_user)
    return _Verified(push, xml, safe)


def _decrypt(account, query, body, timestamp, nonce):
    envelope = parse_xml(body)
    encrypted = envelope.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise MalformedPush("safe-mode push without <Encrypt>")
    # Verify msg_signature before touching the ciphertext (§7.3).
    if not crypto.check_signature(account.token, query.get("msg_signature", ""), timestamp, nonce, encrypted):
        return _refusal(403, "bad msg_signature")
    if not account.aes_keys:
        return _refusal(400, "encrypted push but no EncodingAESKey configured")
    try:
        xml, _key = crypto.decrypt_with_any(account.aes_keys, account.appid, encrypted)
    except crypto.CryptoError as exc:
        return _refusal(400, f"cannot decrypt: {exc}")
    return xml
