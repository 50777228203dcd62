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


def _account(appid):
    return OfficialAccount.objects.filter(appid=appid, is_active=True).first()


def handle(appid, method, query, body, *, now=None, content_length=None):
    """Answer one callback request. `query` is a mapping of the query string."""
    now = now if now is not None else time.time()
    if method not in ("GET", "POST"):
        return refuse(405, "method", appid, method=method)
    limit = settings.WECHAT_MAX_BODY_BYTES
    if method == "POST" and ((content_length or 0) > limit or len(body) > limit):
        return refuse(413, "body too large", appid, size=max(content_length or 0, len(body)))
    account = _account(appid)
    if account is None:
        return refuse(404, "unknown appid", appid)

    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if not crypto.check_signature(account.token, query.get("signature", ""), timestamp, nonce):
        return refuse(403, "bad or missing signature", appid)
    try:
        skew = abs(now - int(timestamp))
    except ValueError:
        return refuse(403, "timestamp is not a number", appid)
    if skew > settings.WECHAT_TIMESTAMP_TOLERANCE:
        return refuse(403, "timestamp outside tolerance", appid, skew=int(skew))

    if method == "GET":
        # URL verification: echo `echostr` verbatim (§6.1), also in safe mode.
        return Answer(200, query.get("echostr", "").encode("utf-8"))

    safe = query.get("encrypt_type", "") == "aes"
    try:
        if safe:
            xml = _decrypt(account, query, body, timestamp, nonce)
            if isinstance(xml, Answer):
                return xml
        else:
            if account.crypto_mode == OfficialAccount.CryptoMode.SAFE:
                return refuse(400, "plaintext push to a safe-mode account", appid)
            xml = body
        _require_utf8(xml)
        push = parse_push(xml)
    except MalformedPush as exc:
        return refuse(400, str(exc), appid)

    if account.original_id and push.to_user and push.to_user != account.original_id:
        return refuse(400, "ToUserName is not this account", appid, to=push.to_user)

    inbound.receive(account=account, push=push, raw_xml=xml.decode("utf-8", "replace"))
    # In safe mode an empty body is the acknowledgement that needs no
    # encryption (§7.4); otherwise the recommended literal `success` (§6.5).
    return EMPTY if safe else SUCCESS


def _decrypt(account, query, body, timestamp, nonce):
    envelope = parse_xml(body)
    encrypted = envelope.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise MalformedPush("safe-mode push without <Encrypt>")
    # Verify msg_signature before touching the ciphertext (§7.3).
    if not crypto.check_signature(account.token, query.get("msg_signature", ""), timestamp, nonce, encrypted):
        return refuse(403, "bad msg_signature", account.appid)
    if not account.aes_keys:
        return refuse(400, "encrypted push but no EncodingAESKey configured", account.appid)
    try:
        xml, _key = crypto.decrypt_with_any(account.aes_keys, account.appid, encrypted)
    except crypto.CryptoError as exc:
        return refuse(400, f"cannot decrypt: {exc}", account.appid)
    return xml
