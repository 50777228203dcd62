"""Hostile pushes over real HTTP to uvicorn serving config.asgi (the fast path).

Each is refused with the right status, nothing is stored, the server stays
up, and its memory does not grow with the size of what it was sent. Time is
bounded by socket timeouts (an unanswered request fails the test), never by
a timed assertion.
"""

import time

import pytest

from tests.conftest import APPID, TOKEN, text_xml
from tests.reliability.servers import request, rss_kb, stream_body
from tests.webhook.helpers import fixture
from wechat import crypto
from wechat.models import InboundMessage
from wechat.sandbox import signing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]


def signed(body, *, mode="plain", timestamp=None, **overrides):
    query, data = signing.signed_request(
        token=TOKEN,
        body=body,
        appid=APPID,
        aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        mode=mode,
        timestamp=timestamp if timestamp is not None else time.time(),
    )
    query.update(overrides)
    return f"/wechat/{APPID}/?" + "&".join(f"{k}={v}" for k, v in query.items()), data


def post(server, path, body):
    return request(server.port, "POST", path, body, {"Content-Type": "text/xml"})


def signed_path_for_raw_body():
    ts, nonce = str(int(time.time())), "rawnonce"
    return f"/wechat/{APPID}/?signature={crypto.signature(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"


PUSH = (
    "<xml><ToUserName><![CDATA[gh_testaccount]]></ToUserName><FromUserName><![CDATA[o_x]]></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content>"
    "<MsgId>31</MsgId></xml>"
)

HOSTILE_BODIES = {
    "billion_laughs": lambda: fixture("hostile_billion_laughs.xml").encode(),
    "external_entity": lambda: fixture("hostile_external_entity.xml").encode(),
    "doctype_only": lambda: b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/x.dtd">' + PUSH.encode(),
    "truncated": lambda: fixture("malformed_truncated.xml").encode(),
    "binary_garbage": lambda: bytes(range(256)) * 16,
    "not_utf8_bytes": lambda: PUSH.encode().replace("你好".encode(), "你好".encode("gbk")),
    "declared_gbk": lambda: ('<?xml version="1.0" encoding="GBK"?>' + PUSH).encode("gbk"),
    "declared_latin1": lambda: ('<?xml version="1.0" encoding="ISO-8859-1"?>' + PUSH).encode(),
    "utf16_with_bom": lambda: ('<?xml version="1.0" encoding="UTF-16"?>' + PUSH).encode("utf-16"),
    "empty": lambda: b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_body_is_refused_with_400(server, account, name):
    status, _, body = post(server, signed_path_for_raw_body(), HOSTILE_BODIES[name]())
    assert status == 400, body
    assert InboundMessage.objects.count() == 0


@pytest.mark.parametrize(
    "case,status",
    [
        ("forged_signature", 403),
        ("missing_signature", 403),
        ("missing_timestamp", 403),
        ("old_timestamp", 403),
        ("future_timestamp", 403),
        ("forged_msg_signature", 403),
        ("unknown_appid", 404),
    ],
)
def test_a_bad_signature_or_timestamp_is_refused(server, account, case, status):
    now = time.time()
    if case == "forged_signature":
        path, data = signed(text_xml(), signature="e" * 40)
    elif case == "missing_signature":
        path, data = signed(text_xml())
        path = path.replace("signature=", "sig=", 1)
    elif case == "missing_timestamp":
        path, data = signed(text_xml())
        path = path.replace("timestamp=", "ts=", 1)
    elif case == "old_timestamp":
        path, data = signed(text_xml(), timestamp=now - 3600)
    elif case == "future_timestamp":
        path, data = signed(text_xml(), timestamp=now + 3600)
    elif case == "forged_msg_signature":
        path, data = signed(text_xml(), mode="safe", msg_signature="0" * 40)
    else:
        path, data = signed(text_xml())
        path = path.replace(APPID, "wx_nobody")
    assert post(server, path, data)[0] == status
    assert InboundMessage.objects.count() == 0


def test_a_replayed_push_is_answered_but_stored_once(server, account):
    path, data = signed(text_xml("重放", msg_id="4242"))
    assert post(server, path, data)[:3:2] == (200, b"success")
    assert post(server, path, data)[:3:2] == (200, b"success")
    assert InboundMessage.objects.filter(msg_id="4242").count() == 1


def test_a_valid_push_still_goes_through_after_the_hostile_ones(server, account):
    for make in HOSTILE_BODIES.values():
        post(server, signed_path_for_raw_body(), make())
    path, data = signed(text_xml("之后", msg_id="4343"))
    assert post(server, path, data)[0] == 200
    assert InboundMessage.objects.get().content == "之后"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_10_mb_body_is_refused_early_with_bounded_memory(server, account, chunked):
    path = signed_path_for_raw_body()
    before = rss_kb(server.proc.pid)
    total = 10 * 1024 * 1024
    for _ in range(3):
        status, body, sent = stream_body(server.port, path, total=total, chunked=chunked)
        assert (status, body) == (413, b"too large")
        # Answered long before the client got through its 10 MB.
        assert sent < total // 2
    growth_kb = rss_kb(server.proc.pid) - before
    assert growth_kb < 16 * 1024, f"server grew by {growth_kb} kB"
    assert InboundMessage.objects.count() == 0
