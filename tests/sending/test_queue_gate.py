"""Queueing: the window gate, quota reservation, the ledger row, the LiveUpdate, enqueue on commit."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from wechat import builders, outbound, window
from wechat.models import AuditLog, Contact, LiveUpdate, MediaAsset, OfficialAccount, OutboundMessage

S = OutboundMessage.Status


def queue(account, contact, content="你好", **kwargs):
    return outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": content}, **kwargs)


def test_a_send_to_a_follower_who_never_wrote_is_refused_and_nothing_is_written(account, stranger):
    with pytest.raises(outbound.SendRefused) as refused:
        queue(account, stranger)
    assert refused.value.reason == window.NEVER_OPENED
    assert refused.value.message == window.REASON_TEXT[window.NEVER_OPENED]
    assert OutboundMessage.objects.count() == 0
    assert LiveUpdate.objects.count() == 0


def test_queueing_reserves_one_unit_and_writes_the_ledger_row(account, follower, conversation):
    message = queue(account, follower)
    assert message.status == S.QUEUED
    assert message.payload == {"touser": follower.openid, "msgtype": "text", "text": {"content": "你好"}}
    assert message.grant_kind == window.LONG
    assert message.conversation == conversation
    follower.refresh_from_db()
    assert follower.long_used == 1


def test_the_sixth_message_after_a_follower_message_is_refused_at_queue_time(account, follower):
    for n in range(5):
        queue(account, follower, content=f"第{n}条")
    with pytest.raises(outbound.SendRefused) as refused:
        queue(account, follower, content="第六条")
    assert refused.value.reason == window.QUOTA_USED
    assert OutboundMessage.objects.count() == 5
    assert Contact.objects.get(pk=follower.pk).long_used == 5


def test_an_unsubscribed_follower_is_refused(account, follower):
    follower.set_window_state(window.close(follower.window_state(), unsubscribed=True))
    follower.save()
    with pytest.raises(outbound.SendRefused) as refused:
        queue(account, follower)
    assert refused.value.reason == window.UNSUBSCRIBED


def test_an_expired_window_is_refused(account, follower):
    with pytest.raises(outbound.SendRefused) as refused:
        queue(account, follower, now=timezone.now() + timedelta(hours=49))
    assert refused.value.reason == window.EXPIRED


def test_a_follower_of_another_account_is_refused(account, follower):
    other = OfficialAccount.objects.create(appid="wx_other", token="t")
    with pytest.raises(outbound.SendRefused):
        queue(other, follower)


def test_an_invalid_message_is_refused_before_the_gate_and_uses_nothing(account, follower):
    with pytest.raises(builders.BuildError):
        queue(account, follower, content="字" * 700)
    assert Contact.objects.get(pk=follower.pk).long_used == 0
    assert OutboundMessage.objects.count() == 0


def test_queueing_records_an_outbound_live_update(account, follower, conversation):
    message = queue(account, follower)
    update = LiveUpdate.objects.get(kind="outbound")
    assert update.conversation_id == conversation.pk
    assert update.data["message"] == message.pk
    assert update.data["status"] == "queued"
    assert update.data["preview"] == "你好"


def test_an_immediate_reply_answers_the_conversation(account, follower, conversation):
    queue(account, follower, content="您好，请问有什么可以帮您？")
    conversation.refresh_from_db()
    assert conversation.waiting_since is None
    assert conversation.first_response_at is not None
    assert conversation.last_message_direction == "out"
    assert conversation.last_message_preview == "您好，请问有什么可以帮您？"


def test_a_scheduled_send_leaves_the_conversation_until_it_goes_out(account, follower, conversation):
    queue(account, follower, send_at=timezone.now() + timedelta(minutes=5))
    conversation.refresh_from_db()
    assert conversation.waiting_since is not None
    assert conversation.last_message_direction == "in"


def test_delivery_is_enqueued_only_after_commit(account, follower, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queue(account, follower)
        assert DBTaskResult.objects.count() == 0
    assert len(callbacks) == 2  # the live push and the delivery task
    for callback in callbacks:
        callback()
    task = DBTaskResult.objects.get()
    assert task.task_path == "wechat.tasks.deliver"
    assert task.queue_name == "send"
    assert task.args_kwargs["kwargs"] == {"contact_id": follower.pk}


def test_a_delayed_send_is_enqueued_to_run_at_its_time(account, follower, django_capture_on_commit_callbacks):
    send_at = timezone.now() + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        message = queue(account, follower, send_at=send_at)
    assert message.send_at == send_at
    assert DBTaskResult.objects.get().run_after == send_at


def test_cancel_gives_the_unit_back_and_only_while_queued(account, follower, agent):
    message = queue(account, follower, send_at=timezone.now() + timedelta(minutes=10))
    assert Contact.objects.get(pk=follower.pk).long_used == 1
    assert outbound.cancel_message(message=message, actor=agent) is True
    message.refresh_from_db()
    assert message.status == S.CANCELLED
    assert Contact.objects.get(pk=follower.pk).long_used == 0
    assert LiveUpdate.objects.filter(kind="outbound_status", data__status="cancelled").count() == 1
    assert AuditLog.objects.get().action == "outbound.cancel"
    assert outbound.cancel_message(message=message, actor=agent) is False
    assert Contact.objects.get(pk=follower.pk).long_used == 0


def test_a_message_in_flight_cannot_be_cancelled(account, follower):
    message = queue(account, follower)
    OutboundMessage.objects.filter(pk=message.pk).update(status=S.SENDING)
    assert outbound.cancel_message(message=message) is False
    assert Contact.objects.get(pk=follower.pk).long_used == 1


def test_cancelling_frees_room_for_another_message(account, follower):
    messages = [queue(account, follower, content=str(n)) for n in range(5)]
    outbound.cancel_message(message=messages[-1])
    queue(account, follower, content="换一条")
    assert OutboundMessage.objects.filter(status=S.QUEUED).count() == 5


def test_a_media_id_of_the_wrong_kind_from_our_library_is_refused(account, follower):
    MediaAsset.objects.create(account=account, title="客服语音", kind="voice", media_id="MEDIA_VOICE", file="x.amr")
    with pytest.raises(builders.BuildError, match="需要图片素材，但“客服语音”是语音"):
        outbound.queue_message(account=account, contact=follower, msgtype="image", data={"media_id": "MEDIA_VOICE"})
    with pytest.raises(builders.BuildError, match="thumb_media_id 需要图片素材"):
        outbound.queue_message(
            account=account,
            contact=follower,
            msgtype="miniprogrampage",
            data={"title": "T", "appid": "wxmini", "pagepath": "pages/index", "thumb_media_id": "MEDIA_VOICE"},
        )
    assert OutboundMessage.objects.count() == 0


def test_an_expired_temporary_asset_is_refused_and_an_unknown_id_passes(account, follower):
    MediaAsset.objects.create(
        account=account,
        title="旧图",
        kind="image",
        media_id="OLD",
        file="x.jpg",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    with pytest.raises(builders.BuildError, match="已过期"):
        outbound.queue_message(account=account, contact=follower, msgtype="image", data={"media_id": "OLD"})
    message = outbound.queue_message(account=account, contact=follower, msgtype="image", data={"media_id": "NOT_OURS"})
    assert message.status == S.QUEUED


def test_resend_is_only_for_failed_or_unknown_and_goes_through_the_gate(account, follower, agent):
    message = queue(account, follower)
    with pytest.raises(outbound.SendRefused) as refused:
        outbound.resend_message(message=message, agent=agent)
    assert refused.value.reason == outbound.NOT_RESENDABLE
    OutboundMessage.objects.filter(pk=message.pk).update(status=S.UNKNOWN)
    message.refresh_from_db()
    again = outbound.resend_message(message=message, agent=agent)
    assert again.resend_of == message
    assert again.payload == message.payload
    assert Contact.objects.get(pk=follower.pk).long_used == 2
    assert AuditLog.objects.get().action == "outbound.resend"


def test_typing_is_requested_at_most_once_per_fifteen_seconds(account, follower, django_capture_on_commit_callbacks):
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbound.notify_typing(contact=follower, now=now) is True
        assert outbound.notify_typing(contact=follower, now=now + timedelta(seconds=14)) is False
        assert outbound.notify_typing(contact=follower, now=now + timedelta(seconds=16)) is True
    assert DBTaskResult.objects.filter(task_path="wechat.tasks.send_typing_task").count() == 2


def test_typing_is_not_requested_when_the_window_is_closed(account, stranger):
    assert outbound.notify_typing(contact=stranger) is False


def test_a_message_behind_a_queued_one_rides_on_its_task(account, follower, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue(account, follower, "一")
        queue(account, follower, "二")
        queue(account, follower, "稍后", send_at=timezone.now() + timedelta(minutes=1))
    # One task for the backlog (its loop delivers both in order), one for the scheduled send.
    assert DBTaskResult.objects.count() == 2
