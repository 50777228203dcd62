"""The shared access token against the sandbox: one fetch for many callers, refresh rules, no leaks."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import OPENID
from tests.sending.live import free_port
from wechat import client, errors, outbound, tokens
from wechat.models import AccessToken, Contact, OfficialAccount, OutboundMessage, SendLog
from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

STABLE = "/cgi-bin/stable_token"
SECRET = "test-app-secret-value"


def test_many_threads_needing_a_token_at_once_cause_one_fetch(account, wechat):
    barrier = threading.Barrier(8)
    got, failures = [], []

    def worker():
        try:
            barrier.wait()
            got.append(tokens.get(account))
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert len(got) == 8 and len(set(got)) == 1
    assert AccessToken.objects.get(account=account).fetch_count == 1
    assert wx.calls(STABLE).count() == 1


def test_a_stored_fresh_token_is_used_without_asking_wechat(account, wechat):
    first = tokens.get(account)
    assert tokens.get(account) == first
    assert wx.calls(STABLE).count() == 1


def test_the_token_is_refreshed_ahead_of_expiry(account, wechat):
    tokens.get(account)
    AccessToken.objects.filter(account=account).update(
        expires_at=timezone.now() + timedelta(seconds=60), fetched_at=timezone.now() - timedelta(hours=2)
    )
    tokens.get(account)
    assert wx.calls(STABLE).count() == 2
    row = AccessToken.objects.get(account=account)
    assert row.expires_at > timezone.now() + timedelta(minutes=30)


def test_classic_mode_uses_the_classic_endpoint(account, wechat):
    account.token_mode = OfficialAccount.TokenMode.CLASSIC
    account.save()
    value = tokens.get(account)
    assert value
    call = wx.calls("/cgi-bin/token").get()
    assert call.method == "GET" and not wx.calls(STABLE).exists()
    assert SECRET not in call.query


def test_a_refused_token_is_refreshed_only_if_it_is_still_the_stored_one(account, wechat):
    current = tokens.get(account)
    assert tokens.refresh(account, failed="a-token-someone-else-used") == current
    assert wx.calls(STABLE).count() == 1
    tokens.refresh(account, failed=current)
    assert wx.calls(STABLE).count() == 2


def test_a_wrong_secret_is_a_plain_error_without_the_secret(account, wechat):
    # The sandbox checks secrets against the account table itself, so only
    # this process's copy of the account carries the wrong one.
    account.app_secret = "wrong-secret-value-123"
    with pytest.raises(errors.TokenUnavailable) as raised:
        tokens.get(account)
    assert not raised.value.retry
    assert raised.value.errcode == 40001  # the stable endpoint's answer to a bad secret
    assert str(raised.value).startswith("获取 access_token 失败")
    assert "wrong-secret-value-123" not in str(raised.value)
    assert "wrong-secret-value-123" not in SendLog.objects.get().request_body + SendLog.objects.get().endpoint
    assert AccessToken.objects.get(account=account).value == ""


def test_the_token_and_the_secret_appear_in_no_log_no_sendlog_and_no_error(account, wechat, settings, caplog):
    caplog.set_level(logging.DEBUG)
    wx.act(account, OPENID, "text", content="在吗", client=Client())
    contact = Contact.objects.get(openid=OPENID)

    def send(text):
        m = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": text})
        outbound.deliver_due(contact_id=contact.pk)
        m.refresh_from_db()
        return m

    send("正常")
    wx.inject_fault("token_expired", count=1)
    send("令牌过期")
    settings.WECHAT_READ_TIMEOUT = 0.3
    wx.inject_fault("read_timeout", count=1, delay_ms=1000)
    send("超时")
    settings.WECHAT_READ_TIMEOUT = 10
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{free_port()}/sandbox"
    refused = send("连不上")
    with pytest.raises(errors.NotSent) as raised:
        client.send_custom(account, b'{"touser":"x","msgtype":"text","text":{"content":"x"}}')

    from wechat.sandbox.models import SandboxToken

    stored = [t.value for t in SandboxToken.objects.all()]
    assert len(stored) >= 2  # the expired one and its replacement
    secrets_ = [*stored, SECRET]
    texts = [caplog.text, str(raised.value), repr(raised.value), refused.reason, refused.last_errmsg]
    for log in SendLog.objects.all():
        texts += [log.endpoint, log.request_body, log.errmsg]
    for message in OutboundMessage.objects.all():
        texts += [message.reason, message.last_errmsg]
    texts += [t.traceback for t in DBTaskResult.objects.all()]
    for secret in secrets_:
        for text in texts:
            assert secret not in text
    assert any("access_token=***" in log.endpoint for log in SendLog.objects.all())
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
