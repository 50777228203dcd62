"""`manage.py send_message` without a worker: what it queues, when, and what it refuses."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.conftest import APPID, OPENID
from wechat.models import OutboundMessage


def run(*args):
    out = StringIO()
    call_command("send_message", "--account", APPID, "--to", OPENID, *args, stdout=out)
    return out.getvalue()


def test_it_queues_through_the_ledger_and_prints_id_and_status(account, follower):
    output = run("--type", "text", "--data", '{"content": "你好"}')
    message = OutboundMessage.objects.get()
    assert output.startswith(f"id={message.pk} status=queued")
    assert message.payload == {"touser": OPENID, "msgtype": "text", "text": {"content": "你好"}}


def test_delay_schedules_the_send(account, follower):
    before = timezone.now()
    run("--type", "text", "--data", '{"content": "稍后"}', "--delay", "90")
    message = OutboundMessage.objects.get()
    assert before + timedelta(seconds=89) < message.send_at < timezone.now() + timedelta(seconds=91)


def test_at_reads_a_local_time_in_shanghai(account, follower):
    target = timezone.localtime(timezone.now() + timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
    run("--type", "text", "--data", '{"content": "定时"}', "--at", target.isoformat())
    message = OutboundMessage.objects.get()
    assert timezone.localtime(message.send_at).replace(tzinfo=None) == target
    assert str(timezone.localtime(message.send_at).tzinfo) == "Asia/Shanghai"


def test_a_time_in_the_past_is_refused(account, follower):
    with pytest.raises(CommandError, match="已经过去了"):
        run("--type", "text", "--data", '{"content": "x"}', "--at", "2020-01-01T00:00")
    assert not OutboundMessage.objects.exists()


def test_an_unknown_account_or_follower_is_refused(account, follower):
    with pytest.raises(CommandError, match="没有 AppID 为 wx_nope 的公众号"):
        call_command("send_message", "--account", "wx_nope", "--to", OPENID, "--type", "text", "--data", "{}")
    with pytest.raises(CommandError, match="拒绝发送"):
        call_command("send_message", "--account", APPID, "--to", "o_nobody", "--type", "text", "--data", "{}")


def test_a_quota_refusal_names_the_reason(account, follower):
    for n in range(5):
        run("--type", "text", "--data", f'{{"content": "{n}"}}')
    with pytest.raises(CommandError, match="发送条数已用完"):
        run("--type", "text", "--data", '{"content": "第六条"}')
