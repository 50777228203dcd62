"""Every refusal of the webhook: right status, a log line saying why, never a 500, nothing stored."""

import logging
import time

import pytest

from tests.conftest import APPID, TOKEN, post_push, text_xml
from tests.webhook.helpers import fixture
from wechat import crypto
from wechat.models import InboundMessage, OfficialAccount


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.WARNING, logger="wechat.webhook")
    return caplog


def refused_because(logs, words):
    return any(words in record.getMessage() for record in logs.records)


def test_it_answers_echostr_verbatim_on_a_signed_get(client, account):
    ts, nonce = str(int(time.time())), "abc"
    sig = crypto.signature(TOKEN, ts, nonce)
    r = client.get(
        f"/wechat/{APPID}/", {"signature": sig, "timestamp": ts, "nonce": nonce, "echostr": "5927782489442352469"}
    )
    assert r.status_code == 200
    assert r.content == b"5927782489442352469"


def test_it_refuses_a_get_with_a_bad_signature(client, account, logs):
    ts = str(int(time.time()))
    r = client.get(f"/wechat/{APPID}/", {"signature": "0" * 40, "timestamp": ts, "nonce": "n", "echostr": "x"})
    assert r.status_code == 403
    assert b"x" not in r.content
    assert refused_because(logs, "bad or missing signature")


def test_it_refuses_a_post_with_a_forged_signature(client, account, logs):
    r = post_push(client, text_xml(), query_overrides={"signature": "f" * 40})
    assert r.status_code == 403
    assert InboundMessage.objects.count() == 0
    assert refused_because(logs, "bad or missing signature")


def test_it_refuses_a_post_without_signature(client, account, logs):
    r = client.post(f"/wechat/{APPID}/?timestamp=1&nonce=2", data=text_xml(), content_type="text/xml")
    assert r.status_code == 403
    assert InboundMessage.objects.count() == 0


def test_it_refuses_a_replayed_old_timestamp(client, account, logs):
    r = post_push(client, text_xml(), timestamp=time.time() - 301)
    assert r.status_code == 403
    assert refused_because(logs, "timestamp outside tolerance")
    assert InboundMessage.objects.count() == 0


def test_it_refuses_a_timestamp_from_the_future(client, account, logs):
    r = post_push(client, text_xml(), timestamp=time.time() + 600)
    assert r.status_code == 403


def test_tolerance_is_configurable(client, account, settings):
    settings.WECHAT_TIMESTAMP_TOLERANCE = 3600
    assert post_push(client, text_xml(), timestamp=time.time() - 1800).status_code == 200


def test_it_refuses_a_body_over_64_kb(client, account, logs):
    body = text_xml("长" * 30000)  # ~90 KB in UTF-8
    r = post_push(client, body)
    assert r.status_code == 413
    assert refused_because(logs, "body too large")
    assert InboundMessage.objects.count() == 0


@pytest.mark.parametrize("name", ["hostile_billion_laughs.xml", "hostile_external_entity.xml"])
def test_it_refuses_doctype_and_entity_declarations(client, account, logs, name):
    started = time.monotonic()
    r = post_push(client, fixture(name))
    assert r.status_code == 400
    assert time.monotonic() - started < 5
    assert refused_because(logs, "DOCTYPE or ENTITY")
    assert InboundMessage.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        "malformed_truncated",
        "not xml at all",
        "<xml><MsgType>text</MsgType></xml>",  # no FromUserName
        "<xml><FromUserName>o</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
        "<root><FromUserName>o</FromUserName></root>",
        "",
    ],
)
def test_it_refuses_malformed_xml_with_400(client, account, logs, body):
    if body == "malformed_truncated":
        body = fixture("malformed_truncated.xml")
    r = post_push(client, body)
    assert r.status_code == 400
    assert InboundMessage.objects.count() == 0


def test_it_refuses_binary_garbage(client, account):
    query = "signature={}&timestamp={}&nonce=n".format(
        crypto.signature(TOKEN, str(int(time.time())), "n"), int(time.time())
    )
    r = client.post(f"/wechat/{APPID}/?{query}", data=bytes(range(256)) * 4, content_type="application/octet-stream")
    assert r.status_code == 400


def test_it_answers_404_for_an_unknown_appid(client, account, logs):
    r = post_push(client, text_xml(), appid="wx_nobody")
    assert r.status_code == 404
    assert refused_because(logs, "unknown appid")


def test_it_refuses_a_bad_msg_signature_before_decrypting(client, account, logs):
    r = post_push(client, text_xml(), mode="safe", query_overrides={"msg_signature": "0" * 40})
    assert r.status_code == 403
    assert refused_because(logs, "bad msg_signature")


def test_it_refuses_ciphertext_for_another_appid(client, account, logs):
    other = OfficialAccount.objects.create(appid="wx_other", token=TOKEN, encoding_aes_key=account.encoding_aes_key)
    # Encrypted for APPID but posted to the other account's URL: the appid check fails.
    from wechat.sandbox import signing

    query, data = signing.signed_request(
        token=TOKEN, body=text_xml(), appid=APPID, aes_key=account.encoding_aes_key, mode="safe"
    )
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = client.post(f"/wechat/{other.appid}/?{qs}", data=data, content_type="text/xml")
    assert r.status_code == 400
    assert refused_because(logs, "appid does not match")


def test_a_safe_mode_account_refuses_plaintext(client, account, logs):
    account.crypto_mode = OfficialAccount.CryptoMode.SAFE
    account.save()
    assert post_push(client, text_xml()).status_code == 400


def test_refusal_logs_never_contain_the_token_or_key(client, account, caplog):
    caplog.set_level(logging.DEBUG)
    post_push(client, text_xml(), query_overrides={"signature": "f" * 40})
    post_push(client, text_xml(), mode="safe", query_overrides={"msg_signature": "0" * 40})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in text
    assert account.encoding_aes_key not in text
