"""The ASGI fast path answers exactly like the Django view, case by case.

Each case is sent twice — through config.asgi's router (which sends
/wechat/<appid>/ to wechat.consumers.WebhookConsumer) and through Django's test
client (the view) — and both answers must match in status, body and what was
stored.
"""

import time

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from config.asgi import application
from tests.conftest import APPID, TOKEN, post_push, text_xml
from tests.webhook.helpers import fixture
from wechat import crypto
from wechat.models import InboundMessage, OfficialAccount
from wechat.sandbox import signing

pytestmark = pytest.mark.django_db(transaction=True)

HOST = [(b"host", b"127.0.0.1")]


def through_consumer(method, path, body=b"", headers=None):
    """One request through the ASGI application (channels.testing needs daphne)."""
    url_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": url_path,
        "query_string": query.encode(),
        "headers": headers or HOST,
    }

    async def exchange():
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(timeout=10)
        payload = b""
        while True:
            part = await communicator.receive_output(timeout=10)
            payload += part.get("body", b"")
            if not part.get("more_body"):
                break
        await communicator.wait(timeout=10)
        return {"status": start["status"], "headers": start.get("headers", []), "body": payload}

    return async_to_sync(exchange)()


def signed_path(body, *, mode="plain", appid=APPID, timestamp=None, **overrides):
    query, data = signing.signed_request(
        token=TOKEN,
        body=body,
        appid=appid,
        aes_key=OfficialAccount.objects.get(appid=APPID).encoding_aes_key,
        mode=mode,
        timestamp=timestamp if timestamp is not None else time.time(),
    )
    query.update(overrides)
    return f"/wechat/{appid}/?" + "&".join(f"{k}={v}" for k, v in query.items()), data


def header(response, name):
    return dict(response["headers"]).get(name)


def test_a_signed_text_push_is_stored_and_answered_success(account):
    path, data = signed_path(text_xml("快速通道", msg_id="71"))
    response = through_consumer("POST", path, data)
    assert response["status"] == 200
    assert response["body"] == b"success"
    assert header(response, b"content-type") == b"text/plain; charset=utf-8"
    assert header(response, b"x-content-type-options") == b"nosniff"
    message = InboundMessage.objects.get()
    assert message.content == "快速通道"
    assert message.conversation is not None


def test_a_retried_push_is_dropped_by_the_fast_path_too(account):
    path, data = signed_path(text_xml(msg_id="72"))
    assert through_consumer("POST", path, data)["body"] == b"success"
    assert through_consumer("POST", path, data)["body"] == b"success"
    assert InboundMessage.objects.count() == 1
    account.refresh_from_db()
    assert account.duplicate_pushes == 1


def test_a_safe_mode_push_is_answered_with_an_empty_body(account):
    path, data = signed_path(text_xml("加密", msg_id="73"), mode="safe")
    response = through_consumer("POST", path, data)
    assert (response["status"], response["body"]) == (200, b"")
    assert InboundMessage.objects.get().content == "加密"


def test_url_verification_echoes_echostr(account):
    ts, nonce = str(int(time.time())), "n1"
    sig = crypto.signature(TOKEN, ts, nonce)
    response = through_consumer("GET", f"/wechat/{APPID}/?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=12345")
    assert (response["status"], response["body"]) == (200, b"12345")


@pytest.mark.parametrize(
    "case",
    [
        "forged_signature",
        "missing_signature",
        "old_timestamp",
        "future_timestamp",
        "unknown_appid",
        "billion_laughs",
        "external_entity",
        "truncated",
        "garbage",
        "bad_msg_signature",
        "wrong_method",
    ],
)
def test_each_refusal_matches_the_django_view(client, account, case):
    via_view, via_consumer = _both(client, case)
    assert via_consumer == via_view
    assert via_consumer[0] in (400, 403, 404, 405)
    assert InboundMessage.objects.count() == 0


def _both(client, case):
    now = time.time()
    body, mode, ts, overrides, appid, method = text_xml(), "plain", now, {}, APPID, "POST"
    if case == "forged_signature":
        overrides = {"signature": "f" * 40}
    elif case == "missing_signature":
        overrides = {"signature": ""}
    elif case == "old_timestamp":
        ts = now - 301
    elif case == "future_timestamp":
        ts = now + 600
    elif case == "unknown_appid":
        appid = "wx_nobody"
    elif case == "billion_laughs":
        body = fixture("hostile_billion_laughs.xml")
    elif case == "external_entity":
        body = fixture("hostile_external_entity.xml")
    elif case == "truncated":
        body = fixture("malformed_truncated.xml")
    elif case == "garbage":
        body = bytes(range(256)) * 4
    elif case == "bad_msg_signature":
        mode, overrides = "safe", {"msg_signature": "0" * 40}
    elif case == "wrong_method":
        method = "PUT"
    if isinstance(body, bytes):
        path, data = signed_path(text_xml(), appid=appid, timestamp=ts, **overrides)
        data = body
    else:
        path, data = signed_path(body, mode=mode, appid=appid, timestamp=ts, **overrides)
    view = client.generic(method, path, data=data, content_type="text/xml")
    consumer = through_consumer(method, path, data)
    return (view.status_code, view.content), (consumer["status"], consumer["body"])


def test_a_body_over_the_limit_is_refused_with_413(client, account):
    path, data = signed_path(text_xml("长" * 30000))
    assert client.post(path, data=data, content_type="text/xml").status_code == 413
    response = through_consumer("POST", path, data)
    assert (response["status"], response["body"]) == (413, b"too large")
    assert InboundMessage.objects.count() == 0


def test_a_streamed_body_is_refused_once_it_passes_the_limit(account):
    # No Content-Length (chunked): the consumer must stop reading at 64 KB and
    # answer while the sender still has megabytes to go.
    path, _ = signed_path(text_xml())
    url_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": url_path,
        "query_string": query.encode(),
        "headers": HOST,
    }

    async def scenario():
        communicator = ApplicationCommunicator(application, scope)
        chunk = b"<xml>" + b"A" * 16 * 1024
        sent = 0
        for _ in range(640):  # up to 10 MB
            await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})
            sent += len(chunk)
            if not await communicator.receive_nothing(timeout=0.01):
                break
        start = await communicator.receive_output(timeout=5)
        body = await communicator.receive_output(timeout=5)
        await communicator.wait(timeout=5)
        return sent, start["status"], body["body"]

    sent, status, body = async_to_sync(scenario)()
    assert (status, body) == (413, b"too large")
    assert sent < 200 * 1024


def test_a_foreign_host_header_is_refused_like_django_does(account):
    path, data = signed_path(text_xml(msg_id="74"))
    response = through_consumer("POST", path, data, headers=[(b"host", b"evil.example")])
    assert response["status"] == 400
    assert InboundMessage.objects.count() == 0


def test_other_paths_still_reach_django(account):
    response = through_consumer("GET", "/accounts/login/")
    assert response["status"] == 200
    assert b"csrfmiddlewaretoken" in response["body"]


def test_the_view_and_the_fast_path_store_the_same_row(client, account):
    post_push(client, text_xml("同一条", msg_id="80"))
    path, data = signed_path(text_xml("同一条", msg_id="81"))
    through_consumer("POST", path, data)
    by_view, by_consumer = InboundMessage.objects.order_by("msg_id")
    fields = ("msg_type", "content", "contact_id", "conversation_id", "data", "media_status")
    assert [getattr(by_view, f) for f in fields] == [getattr(by_consumer, f) for f in fields]
