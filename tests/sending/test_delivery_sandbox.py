"""Delivery over real HTTP against the sandbox WeChat on loopback: bodies, errcodes, retries, the window.

The test process delivers (`outbound.deliver_due`) so each branch is
deterministic; the worker process is exercised in test_worker_processes.py.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import OPENID
from tests.sending.live import free_port, wait_until
from wechat import builders, errors, outbound, window
from wechat.models import Contact, OutboundMessage, SendLog
from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

S = OutboundMessage.Status
SEND = "/cgi-bin/message/custom/send"


def writes(account, openid=OPENID, content="在吗？"):
    """The follower sends a message through the sandbox platform to our webhook."""
    result = wx.act(account, openid, "text", content=content, client=Client())
    assert result.delivered, result.error
    return Contact.objects.get(account=account, openid=openid)


def send(account, contact, msgtype="text", data=None, **kwargs):
    data = data if data is not None else {"content": "您好"}
    message = outbound.queue_message(account=account, contact=contact, msgtype=msgtype, data=data, **kwargs)
    outbound.deliver_due(contact_id=contact.pk)
    message.refresh_from_db()
    return message


def deliver_until_settled(message, timeout=20):
    """Run deliveries until the message leaves queued/sending (retries wait their back-off)."""

    def settled():
        outbound.deliver_due(contact_id=message.contact_id)
        message.refresh_from_db()
        return message.status not in (S.QUEUED, S.SENDING)

    wait_until(settled, timeout=timeout, interval=0.2, what=f"outbound {message.pk} to settle")
    return message


def sends(account, openid=OPENID):
    return list(wx.delivered(account, openid))


def payloads(account):
    """The eleven payloads, with live sandbox media where a type needs it."""
    image = wx.make_media(account, "image").media_id
    return {
        "text": {"content": '您好 😀 <a href="https://example.com/?a=1&b=2">订单</a>'},
        "image": {"media_id": image},
        "voice": {"media_id": wx.make_media(account, "voice").media_id},
        "video": {
            "media_id": wx.make_media(account, "video").media_id,
            "thumb_media_id": wx.make_media(account, "thumb").media_id,
            "title": "安装视频",
            "description": "三分钟学会",
        },
        "music": {
            "title": "等待音乐",
            "description": "D",
            "musicurl": "https://music.example/a.mp3",
            "hqmusicurl": "https://music.example/a-hq.mp3",
            "thumb_media_id": image,
        },
        "news": {
            "articles": [
                {
                    "title": "新品",
                    "description": "看看",
                    "url": "https://e.example/a",
                    "picurl": "https://e.example/p.jpg",
                }
            ]
        },
        "mpnews": {"media_id": "MPNEWS_MEDIA_ID"},
        "mpnewsarticle": {"article_id": "ARTICLE_ID_1"},
        "msgmenu": {
            "head_content": "满意吗？",
            "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}],
            "tail_content": "谢谢",
        },
        "wxcard": {"card_id": "pFS7Fjg8kV1IdDz01r4SQwMkuCKc"},
        "miniprogrampage": {
            "title": "小程序",
            "appid": "wx_mini_1",
            "pagepath": "pages/index/index?foo=bar",
            "thumb_media_id": image,
        },
    }


def test_each_of_the_eleven_types_goes_out_with_exactly_the_body_of_the_reference(account, wechat):
    for msgtype, data in payloads(account).items():
        contact = writes(account, content=f"想看{msgtype}")  # a fresh 5 / 48 h grant each time
        message = send(account, contact, msgtype, data, kf_account="kf01@gh_testaccount")
        call = wx.calls(SEND).last()
        expected = builders.serialize(
            builders.build(msgtype, openid=OPENID, data=data, kf_account="kf01@gh_testaccount")
        )
        assert call.body.encode("utf-8") == expected, msgtype
        assert call.json[msgtype] == data or msgtype == "news", msgtype
        if msgtype == "mpnews":
            # The sandbox keeps no legacy news material: its answer is final (§8.3).
            assert message.status == S.FAILED and message.last_errcode == 40007
            continue
        assert message.status == S.SENT, (msgtype, message.reason)
        assert sends(account)[-1].body == call.json
    assert len(sends(account)) == 10


def test_a_follower_who_never_wrote_is_refused_before_anything_is_sent(account, wechat):
    stranger = Contact.objects.create(account=account, openid="o_silent")
    with pytest.raises(outbound.SendRefused):
        send(account, stranger)
    assert not wx.calls(SEND).exists()


def test_a_sixth_message_is_refused_before_anything_is_sent(account, wechat):
    contact = writes(account)
    for n in range(5):
        assert send(account, contact, data={"content": f"第{n + 1}条"}).status == S.SENT
    with pytest.raises(outbound.SendRefused) as refused:
        send(account, Contact.objects.get(pk=contact.pk), data={"content": "第六条"})
    assert refused.value.reason == window.QUOTA_USED
    assert wx.calls(SEND).count() == 5


def test_system_busy_is_retried_to_exactly_one_delivery(account, wechat):
    contact = writes(account)
    wx.inject_fault("busy", count=2, endpoint=SEND)
    message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "稍等"})
    deliver_until_settled(message)
    assert message.status == S.SENT and message.attempts == 3
    assert len(sends(account)) == 1
    logs = SendLog.objects.filter(outbound=message).order_by("id")
    assert [log.errcode for log in logs] == [-1, -1, 0]
    assert [log.attempt for log in logs] == [1, 2, 3]
    assert logs[0].rid and logs[0].rid in logs[0].errmsg


def test_an_http_5xx_is_retried_to_exactly_one_delivery(account, wechat):
    contact = writes(account)
    wx.inject_fault("http_error", count=1, endpoint=SEND, http_status=502)
    message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "稍等"})
    deliver_until_settled(message)
    assert message.status == S.SENT and message.attempts == 2
    assert len(sends(account)) == 1
    assert list(SendLog.objects.filter(outbound=message).values_list("http_status", flat=True)) == [502, 200]


def test_a_refused_connection_is_retried_because_nothing_was_sent(account, wechat, settings):
    contact = writes(account)
    outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "预热"})
    outbound.deliver_due(contact_id=contact.pk)  # the token is now stored
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{free_port()}/sandbox"  # nobody listens there
    message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "稍等"})
    outbound.deliver_due(contact_id=contact.pk)
    message.refresh_from_db()
    assert message.status == S.QUEUED and message.next_attempt_at is not None
    assert message.reason.startswith(errors.NOT_SENT_TEXT)
    settings.WECHAT_API_BASE = wechat.api_base
    deliver_until_settled(message)
    assert message.status == S.SENT
    assert len(sends(account)) == 2


def test_rate_limit_is_retried_after_a_minute_not_at_once(account, wechat):
    contact = writes(account)
    wx.inject_fault("rate_limit", count=1, endpoint=SEND)
    message = send(account, contact)
    assert message.status == S.QUEUED and message.last_errcode == 45011
    assert message.next_attempt_at >= timezone.now() + timedelta(seconds=50)
    outbound.deliver_due(contact_id=contact.pk)
    assert wx.calls(SEND).count() == 1
    assert not sends(account)


def test_daily_quota_is_permanent_and_not_retried(account, wechat):
    contact = writes(account)
    wx.inject_fault("daily_quota", count=1, endpoint=SEND)
    message = send(account, contact)
    assert message.status == S.FAILED
    assert message.reason == errors.describe(45009)
    outbound.deliver_due(contact_id=contact.pk)
    assert wx.calls(SEND).count() == 1
    assert Contact.objects.get(pk=contact.pk).long_used == 0  # the unit came back


def test_a_read_timeout_leaves_the_message_unknown_and_it_is_never_repeated(account, wechat, settings):
    settings.WECHAT_READ_TIMEOUT = 0.5
    contact = writes(account)
    wx.inject_fault("read_timeout", count=1, endpoint=SEND, delay_ms=2000)
    message = send(account, contact)
    assert message.status == S.UNKNOWN
    assert message.reason == errors.AMBIGUOUS_TEXT
    # The platform did deliver it; nothing on our side sends it again.
    wait_until(lambda: len(sends(account)) == 1, what="the sandbox to finish the held call")
    outbound.deliver_due(contact_id=contact.pk)
    outbound.sweep(now=timezone.now() + timedelta(minutes=5))
    outbound.deliver_due(contact_id=contact.pk)
    assert wx.calls(SEND).count() == 1
    assert len(sends(account)) == 1
    assert Contact.objects.get(pk=contact.pk).long_used == 1  # it may have been delivered: the unit stays used


def test_a_reset_after_the_request_was_written_is_unknown_not_resent(account, wechat):
    contact = writes(account)
    wx.inject_fault("reset", count=1, endpoint=SEND)
    message = send(account, contact)
    # From the client's side a reset after the last byte left cannot be told
    # apart from one after WeChat acted: §10.2 says do not repeat it.
    assert message.status == S.UNKNOWN
    outbound.deliver_due(contact_id=contact.pk)
    assert not sends(account)


def test_an_expired_token_is_refreshed_once_and_the_send_replayed_once(account, wechat):
    contact = writes(account)
    send(account, contact, data={"content": "一"})
    fetches = account.access_token.fetch_count
    wx.inject_fault("token_expired", count=1, endpoint=SEND)
    message = send(account, contact, data={"content": "二"})
    assert message.status == S.SENT
    account.access_token.refresh_from_db()
    assert account.access_token.fetch_count == fetches + 1
    assert [m.payload["content"] for m in sends(account)] == ["一", "二"]
    assert list(SendLog.objects.filter(outbound=message).values_list("errcode", flat=True)) == [42001, 0]


def test_45015_from_wechat_fails_the_message_and_closes_our_window(account, wechat):
    contact = writes(account)
    wx.age(account, OPENID, seconds=49 * 3600)  # WeChat's clock says the window is over; ours does not yet
    message = send(account, contact)
    assert message.status == S.FAILED and message.last_errcode == 45015
    assert message.reason == errors.describe(45015)
    contact.refresh_from_db()
    assert not window.check(contact.window_state(), timezone.now()).allowed


def test_45047_from_wechat_exhausts_our_quota(account, wechat):
    contact = writes(account)
    for n in range(5):
        send(account, contact, data={"content": str(n)})
    Contact.objects.filter(pk=contact.pk).update(long_used=0)  # our book drifted from WeChat's
    message = send(account, Contact.objects.get(pk=contact.pk), data={"content": "多一条"})
    assert message.status == S.FAILED and message.last_errcode == 45047
    assert window.check(Contact.objects.get(pk=contact.pk).window_state(), timezone.now()).reason == window.QUOTA_USED


def test_43004_from_wechat_marks_the_follower_unsubscribed(account, wechat):
    wx.create_follower(account, "o_not_following")
    contact = Contact.objects.create(account=account, openid="o_not_following")
    state = window.apply_action(contact.window_state(), msg_type="text", at=timezone.now())
    contact.set_window_state(state)
    contact.save()
    message = send(account, contact)
    assert message.status == S.FAILED and message.last_errcode == 43004
    contact.refresh_from_db()
    assert not contact.subscribed


def test_a_wrong_media_kind_is_refused_by_wechat_and_not_retried(account, wechat):
    contact = writes(account)
    voice = wx.make_media(account, "voice").media_id  # not in our library: WeChat decides
    message = send(account, contact, "image", {"media_id": voice})
    assert message.status == S.FAILED and message.last_errcode == 40004
    assert message.attempts == 1


def test_typing_is_sent_and_an_early_repeat_is_accepted_quietly(account, wechat):
    contact = writes(account)
    assert outbound.send_typing(contact_id=contact.pk) == "ok"
    assert outbound.send_typing(contact_id=contact.pk) == "quiet"  # 45081: already typing
    assert wx.get(account, OPENID).typing_until is not None
