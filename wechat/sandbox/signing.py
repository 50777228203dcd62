"""Build pushes the way WeChat does: XML, query signature, optional AES envelope.

Used by the follower simulator, the tests and the benchmarks, so all three
speak to the webhook exactly like the real platform (§6.1, §6.2, §7.3).
"""

import secrets
import time
from xml.sax.saxutils import escape

from wechat import crypto


def cdata(value):
    text = str(value)
    # "]]>" cannot appear inside CDATA; split it across two sections.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def push_xml(*, to_user, from_user, msg_type, create_time=None, fields=None):
    """A push body. `fields` values: str → CDATA, int → bare, dict → nested element."""
    create_time = int(create_time if create_time is not None else time.time())
    parts = [
        f"<ToUserName>{cdata(to_user)}</ToUserName>",
        f"<FromUserName>{cdata(from_user)}</FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
        f"<MsgType>{cdata(msg_type)}</MsgType>",
    ]
    parts.extend(_fields(fields or {}))
    return "<xml>" + "".join(parts) + "</xml>"


def _fields(fields):
    out = []
    for name, value in fields.items():
        if isinstance(value, dict):
            out.append(f"<{name}>{''.join(_fields(value))}</{name}>")
        elif isinstance(value, list):
            out.extend(f"<{name}>{''.join(_fields(item))}</{name}>" for item in value)
        elif isinstance(value, int):
            out.append(f"<{name}>{value}</{name}>")
        else:
            out.append(f"<{name}>{cdata(value)}</{name}>")
    return out


def signed_request(*, token, body, appid="", aes_key="", mode="plain", timestamp=None, nonce=None, openid=""):
    """(query dict, body bytes) for a push in `mode`: plain, compatible or safe."""
    timestamp = str(int(timestamp if timestamp is not None else time.time()))
    nonce = nonce or secrets.token_hex(5)
    query = {"signature": crypto.signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        query["openid"] = openid
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if mode == "plain":
        return query, body.encode("utf-8")
    encrypted = crypto.encrypt(aes_key, appid, body)
    query["encrypt_type"] = "aes"
    query["msg_signature"] = crypto.signature(token, timestamp, nonce, encrypted)
    if mode == "safe":
        to_user = _between(body, "<ToUserName>", "</ToUserName>")
        envelope = f"<xml><ToUserName>{to_user}</ToUserName><Encrypt>{cdata(encrypted)}</Encrypt></xml>"
    else:  # compatible: plaintext fields and the Encrypt element side by side
        envelope = body.replace("</xml>", f"<Encrypt>{cdata(encrypted)}</Encrypt></xml>")
    return query, envelope.encode("utf-8")


def _between(text, start, end):
    i = text.find(start)
    j = text.find(end, i)
    return text[i + len(start) : j] if i >= 0 and j >= 0 else escape("")
