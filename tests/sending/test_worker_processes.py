"""`manage.py sendworker` as real processes: delivery, retries, schedules, kill -9, two workers, shutdown.

Waits are bounded polls of the ledger; nothing asserts on elapsed time.
"""

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tests.conftest import APPID, OPENID
from tests.sending.live import ROOT, child_env, wait_until
from wechat import builders, errors, outbound
from wechat.models import Contact, OutboundMessage, SendLog
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxToken

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

S = OutboundMessage.Status
SEND = "/cgi-bin/message/custom/send"
SECRET = "test-app-secret-value"


def writes(account, openid=OPENID, content="在吗？"):
    result = wx.act(account, openid, "text", content=content, client=Client())
    assert result.delivered, result.error
    return Contact.objects.get(account=account, openid=openid)


def status_of(message):
    message.refresh_from_db()
    return message.status


def settled(message):
    return status_of(message) not in (S.QUEUED, S.SENDING)


def assert_no_secrets(*texts):
    values = [t.value for t in SandboxToken.objects.all()] + [SECRET]
    for text in texts:
        for value in values:
            assert value not in text


def test_send_message_delivers_every_type_through_a_running_worker(account, wechat, workers):
    worker = workers(threads=2)
    image = wx.make_media(account, "image").media_id
    cases = {
        "text": {"content": "你好，这里是客服"},
        "image": {"media_id": image},
        "voice": {"media_id": wx.make_media(account, "voice").media_id},
        "video": {"media_id": wx.make_media(account, "video").media_id, "title": "视频"},
        "music": {
            "musicurl": "https://m.example/a.mp3",
            "hqmusicurl": "https://m.example/b.mp3",
            "thumb_media_id": image,
        },
        "news": {"articles": [{"title": "新品", "url": "https://e.example/a"}]},
        "mpnewsarticle": {"article_id": "ARTICLE_1"},
        "msgmenu": {"list": [{"id": "1", "content": "满意"}, {"id": "2", "content": "不满意"}]},
        "wxcard": {"card_id": "CARD_1"},
        "miniprogrampage": {"title": "小程序", "appid": "wx_mini", "pagepath": "pages/index", "thumb_media_id": image},
    }
    for msgtype, data in cases.items():
        writes(account, content=f"要{msgtype}")
        out = StringIO()
        call_command(
            "send_message",
            "--account",
            APPID,
            "--to",
            OPENID,
            "--type",
            msgtype,
            "--data",
            json.dumps(data, ensure_ascii=False),
            "--wait",
            "30",
            stdout=out,
        )
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("id=") and "status=queued" in lines[0]
        assert "status=sent" in lines[-1], (msgtype, lines)
        body = builders.serialize(builders.build(msgtype, openid=OPENID, data=data))
        assert wx.calls(SEND).last().body.encode("utf-8") == body
    assert wx.delivered(account, OPENID).count() == len(cases)
    assert_no_secrets(worker.output())


def test_send_message_refuses_a_follower_who_never_wrote_and_exits_non_zero(account, wechat):
    Contact.objects.create(account=account, openid="o_silent")
    args = [
        sys.executable,
        "manage.py",
        "send_message",
        "--account",
        APPID,
        "--to",
        "o_silent",
        "--type",
        "text",
        "--data",
        '{"content": "你好"}',
    ]
    done = subprocess.run(args, cwd=ROOT, env=child_env(wechat.api_base), capture_output=True, timeout=60)
    assert done.returncode != 0
    assert "拒绝发送" in done.stderr.decode("utf-8")
    assert "尚未与公众号互动" in done.stderr.decode("utf-8")
    assert not OutboundMessage.objects.exists() and not wx.calls(SEND).exists()


def test_send_message_rejects_bad_input_with_a_clear_message(account, wechat):
    writes(account)
    with pytest.raises(CommandError, match="不是合法的 JSON"):
        call_command("send_message", "--account", APPID, "--to", OPENID, "--type", "text", "--data", "{content:")
    with pytest.raises(CommandError, match="消息无效：图文消息只能包含 1 篇文章"):
        call_command(
            "send_message", "--account", APPID, "--to", OPENID, "--type", "news", "--data", json.dumps({"articles": []})
        )
    assert not OutboundMessage.objects.exists()


def test_a_transient_error_is_retried_by_the_worker_to_exactly_one_delivery(account, wechat, workers):
    workers(threads=2)
    contact = writes(account)
    wx.inject_fault("busy", count=2, endpoint=SEND)
    message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "重试"})
    wait_until(lambda: settled(message), timeout=30, what="the retried send")
    assert message.status == S.SENT and message.attempts == 3
    assert wx.delivered(account, OPENID).count() == 1


def test_a_permanent_error_is_not_retried_by_the_worker(account, wechat, workers):
    workers(threads=2)
    contact = writes(account)
    wx.inject_fault("daily_quota", count=5, endpoint=SEND)
    message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "配额"})
    wait_until(lambda: settled(message), timeout=30, what="the failed send")
    assert message.status == S.FAILED and message.reason == errors.describe(45009)
    assert SendLog.objects.filter(outbound=message).count() == 1


def test_a_scheduled_send_goes_out_at_its_time_and_a_cancelled_one_never(account, wechat, workers):
    workers(threads=2)
    contact = writes(account)
    send_at = timezone.now() + timedelta(seconds=2)
    kept = outbound.queue_message(
        account=account, contact=contact, msgtype="text", data={"content": "定时"}, send_at=send_at
    )
    dropped = outbound.queue_message(
        account=account, contact=contact, msgtype="text", data={"content": "取消"}, send_at=send_at
    )
    assert outbound.cancel_message(message=dropped)
    marker = outbound.queue_message(
        account=account,
        contact=contact,
        msgtype="text",
        data={"content": "之后"},
        send_at=send_at + timedelta(seconds=1),
    )
    wait_until(lambda: settled(marker), timeout=30, what="the scheduled sends")
    kept.refresh_from_db()
    assert kept.status == S.SENT and kept.sent_at >= send_at
    assert status_of(dropped) == S.CANCELLED
    assert [m.payload["content"] for m in wx.delivered(account, OPENID)] == ["定时", "之后"]


def test_kill_9_mid_send_leaves_the_message_unknown_not_lost_not_duplicated(account, wechat, workers):
    doomed = workers(threads=2, SEND_LEASE_SECONDS=3)
    contact = writes(account)
    wx.inject_fault("latency", count=1, endpoint=SEND, delay_ms=2500)
    first = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "在途"})
    second = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "排队"})
    wait_until(lambda: status_of(first) == S.SENDING, timeout=30, what="the worker to claim the send")
    doomed.kill()
    survivor = workers(threads=2)
    wait_until(lambda: status_of(first) == S.UNKNOWN, timeout=30, what="the sweeper to call it unknown")
    assert first.reason == errors.LEASE_EXPIRED_TEXT
    wait_until(lambda: settled(second), timeout=30, what="the message queued behind it")
    assert second.status == S.SENT
    survivor.stop()
    # Whether the held call got through depends on when the connection died
    # (the server may drop a request whose client vanished); either way it is
    # in the ledger as unknown — not lost — and went out at most once.
    contents = [m.payload["content"] for m in wx.delivered(account, OPENID)]
    assert contents.count("在途") <= 1
    assert contents.count("排队") == 1
    assert contents[-1] == "排队"
    assert status_of(first) == S.UNKNOWN
    assert SendLog.objects.filter(outbound=first).count() == 0  # the dead worker never logged an answer
    assert_no_secrets(doomed.output(), survivor.output())


def test_two_workers_never_send_a_message_twice_and_keep_each_followers_order(account, wechat, workers):
    workers(threads=8)
    workers(threads=8)
    followers = [f"o_busy_{n}" for n in range(8)]
    queued = {}
    for openid in followers:
        contact = writes(account, openid=openid)
        queued[openid] = [
            outbound.queue_message(
                account=account, contact=contact, msgtype="text", data={"content": f"{openid}-{n}"}
            ).pk
            for n in range(5)
        ]
    total = sum(len(ids) for ids in queued.values())
    wait_until(lambda: OutboundMessage.objects.filter(status=S.SENT).count() == total, timeout=180, what="every send")
    delivered = list(wx.delivered(account))
    contents = [m.payload["content"] for m in delivered]
    assert len(contents) == total and len(set(contents)) == total
    for openid in followers:
        mine = [m.payload["content"] for m in wx.delivered(account, openid)]
        assert mine == [f"{openid}-{n}" for n in range(5)]
    assert SendLog.objects.filter(endpoint__startswith=SEND).count() == total


def test_sigterm_stops_the_worker_cleanly(account, wechat, workers):
    worker = workers(threads=3)
    assert worker.stop() == 0
    assert "stopped" in worker.output()


def test_every_thread_gets_a_database_connection_however_small_the_configured_pool(account, wechat, workers):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    # Each thread holds its connection for the whole task, across the call
    # to WeChat: an unsized pool of 2 would leave six threads timing out.
    worker = workers(threads=8, DATABASE_POOL_MAX_SIZE="2", DATABASE_POOL_TIMEOUT="1")
    contacts = [writes(account, openid=f"o_pool_{n}") for n in range(8)]
    wx.inject_fault("latency", count=8, endpoint=SEND, delay_ms=1500)
    ids = [
        outbound.queue_message(account=account, contact=c, msgtype="text", data={"content": f"池 {c.openid}"}).pk
        for c in contacts
    ]
    sent = OutboundMessage.objects.filter(pk__in=ids, status=S.SENT)
    wait_until(lambda: sent.count() == len(ids), timeout=60, what="every send")
    assert wx.delivered(account).count() == len(ids)
    output = worker.output()
    assert "died" not in output and "PoolTimeout" not in output and "Traceback" not in output
