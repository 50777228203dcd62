"""The ledger after queueing: claims in order, one in flight per follower, settling by outcome, the sweeper.

These drive the state machine with the typed outcomes `wechat.client` raises;
the same outcomes over real HTTP are in test_delivery_sandbox.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from wechat import errors, outbound, window
from wechat.models import Contact, LiveUpdate, OutboundMessage

S = OutboundMessage.Status
W = "test-worker"


def queue(account, contact, content="你好", **kwargs):
    return outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": content}, **kwargs)


def used(contact):
    return Contact.objects.get(pk=contact.pk).long_used


def test_claims_follow_queue_order_and_only_one_is_in_flight_per_follower(account, follower):
    first, second = queue(account, follower, "一"), queue(account, follower, "二")
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    assert claimed.pk == first.pk and claimed.status == S.SENDING and claimed.attempts == 1
    assert claimed.lease_expires_at > timezone.now()
    assert outbound.claim_next(contact_id=follower.pk, worker="another") is None
    outbound._settle(claimed, W, S.SENT)
    assert outbound.claim_next(contact_id=follower.pk, worker="another").pk == second.pk


def test_a_scheduled_message_is_not_claimed_before_its_time(account, follower):
    later = queue(account, follower, "稍后", send_at=timezone.now() + timedelta(minutes=5))
    now_ = queue(account, follower, "现在")
    assert outbound.claim_next(contact_id=follower.pk, worker=W).pk == now_.pk
    outbound._settle(OutboundMessage.objects.get(pk=now_.pk), W, S.SENT)
    assert outbound.claim_next(contact_id=follower.pk, worker=W) is None
    at = timezone.now() + timedelta(minutes=5, seconds=1)
    assert outbound.claim_next(contact_id=follower.pk, worker=W, now=at).pk == later.pk


def test_a_cancelled_scheduled_message_is_never_claimed(account, follower):
    message = queue(account, follower, send_at=timezone.now() + timedelta(minutes=5))
    outbound.cancel_message(message=message)
    assert outbound.claim_next(contact_id=follower.pk, worker=W, now=timezone.now() + timedelta(hours=1)) is None


def test_sent_keeps_the_unit_and_records_every_status_change(account, follower, conversation):
    message = queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    outbound._settle(claimed, W, S.SENT)
    message.refresh_from_db()
    assert message.status == S.SENT and message.sent_at is not None
    assert used(follower) == 1
    statuses = list(LiveUpdate.objects.filter(kind="outbound_status").values_list("data__status", flat=True))
    assert statuses == ["sending", "sent"]


def test_a_transient_error_requeues_with_backoff_and_holds_back_later_messages(
    account, follower, django_capture_on_commit_callbacks
):
    first, second = queue(account, follower, "一"), queue(account, follower, "二")
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    with django_capture_on_commit_callbacks(execute=True):
        outbound._settle_error(claimed, W, errors.APIError(-1, "system error rid: abc", "abc"))
    first.refresh_from_db()
    assert first.status == S.QUEUED and first.next_attempt_at > timezone.now()
    assert first.last_errcode == -1 and first.rid == "abc" and first.worker == ""
    assert DBTaskResult.objects.filter(run_after=first.next_attempt_at).exists()
    # The second message waits behind the first: order within a conversation.
    assert outbound.claim_next(contact_id=follower.pk, worker=W) is None
    later = first.next_attempt_at + timedelta(milliseconds=1)
    assert outbound.claim_next(contact_id=follower.pk, worker=W, now=later).pk == first.pk
    assert second.pk != first.pk


def test_rate_limit_waits_a_minute(account, follower):
    queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    outbound._settle_error(claimed, W, errors.APIError(45011))
    claimed.refresh_from_db()
    assert claimed.next_attempt_at - timezone.now() > timedelta(seconds=55)


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        (lambda: errors.APIError(-1), outbound.MAX_ATTEMPTS),  # §10.2: at most 3 retries
        (lambda: errors.ServerError(502), outbound.OUTAGE_MAX_ATTEMPTS),
        (lambda: errors.NotSent("ConnectionError"), outbound.OUTAGE_MAX_ATTEMPTS),
    ],
)
def test_retries_are_capped_then_failed_with_the_unit_given_back(account, follower, failure, attempts):
    message = queue(account, follower)
    for _attempt in range(attempts):
        claimed = outbound.claim_next(contact_id=follower.pk, worker=W, now=timezone.now() + timedelta(hours=1))
        assert claimed is not None
        outbound._settle_error(claimed, W, failure())
    message.refresh_from_db()
    assert message.status == S.FAILED
    assert message.attempts == attempts
    assert f"已尝试 {attempts} 次仍失败" in message.reason
    assert used(follower) == 0


def test_an_outage_backs_off_longer_each_time(account, follower):
    queue(account, follower)
    delays = []
    for _attempt in range(4):
        now = timezone.now() + timedelta(hours=1)
        claimed = outbound.claim_next(contact_id=follower.pk, worker=W, now=now)
        before = timezone.now()
        outbound._settle_error(claimed, W, errors.NotSent("ConnectionError"))
        claimed.refresh_from_db()
        delays.append(round((claimed.next_attempt_at - before).total_seconds()))
    assert delays == [1, 2, 4, 8]


@pytest.mark.parametrize("errcode", [40003, 40007, 45002, 48001, 43019, 40001])
def test_a_permanent_error_fails_at_once_with_the_plain_reason_and_gives_the_unit_back(account, follower, errcode):
    message = queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    outbound._settle_error(claimed, W, errors.APIError(errcode))
    message.refresh_from_db()
    assert message.status == S.FAILED and message.attempts == 1
    assert message.reason == errors.describe(errcode)
    assert message.last_errcode == errcode
    assert used(follower) == 0


def test_45015_closes_the_window(account, follower):
    queue(account, follower)
    outbound._settle_error(outbound.claim_next(contact_id=follower.pk, worker=W), W, errors.APIError(45015))
    contact = Contact.objects.get(pk=follower.pk)
    assert window.check(contact.window_state(), timezone.now()).reason == window.NEVER_OPENED
    assert contact.subscribed


def test_45047_exhausts_the_quota(account, follower):
    queue(account, follower)
    outbound._settle_error(outbound.claim_next(contact_id=follower.pk, worker=W), W, errors.APIError(45047))
    contact = Contact.objects.get(pk=follower.pk)
    assert window.check(contact.window_state(), timezone.now()).reason == window.QUOTA_USED
    with pytest.raises(outbound.SendRefused):
        queue(account, contact)


def test_43004_marks_the_follower_unsubscribed(account, follower):
    queue(account, follower)
    outbound._settle_error(outbound.claim_next(contact_id=follower.pk, worker=W), W, errors.APIError(43004))
    contact = Contact.objects.get(pk=follower.pk)
    assert not contact.subscribed and contact.unsubscribed_at is not None


def test_an_answer_that_never_came_is_unknown_keeps_the_unit_and_is_not_retried(account, follower):
    message = queue(account, follower)
    outbound._settle_error(outbound.claim_next(contact_id=follower.pk, worker=W), W, errors.Ambiguous("ReadTimeout"))
    message.refresh_from_db()
    assert message.status == S.UNKNOWN and message.reason == errors.AMBIGUOUS_TEXT
    assert used(follower) == 1
    assert outbound.claim_next(contact_id=follower.pk, worker=W, now=timezone.now() + timedelta(hours=1)) is None


def test_only_the_claimer_settles(account, follower):
    queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    updates = LiveUpdate.objects.filter(kind="outbound_status")
    before = updates.count()
    assert outbound._settle(claimed, "someone-else", S.SENT) is False
    assert OutboundMessage.objects.get(pk=claimed.pk).status == S.SENDING
    assert updates.count() == before  # nothing changed, nothing announced
    assert outbound._settle(claimed, W, S.SENT) is True
    assert updates.latest("id").data["status"] == "sent"
    assert updates.count() == before + 1


def test_the_sweeper_turns_an_expired_lease_into_unknown_never_a_resend(account, follower):
    message = queue(account, follower)
    outbound.claim_next(contact_id=follower.pk, worker=W)
    later = timezone.now() + timedelta(seconds=outbound.lease_seconds() + 1)
    expired, _requeued = outbound.sweep(now=later)
    assert expired == 1
    message.refresh_from_db()
    assert message.status == S.UNKNOWN and message.reason == errors.LEASE_EXPIRED_TEXT
    assert used(follower) == 1
    assert outbound.claim_next(contact_id=follower.pk, worker=W, now=later) is None
    assert LiveUpdate.objects.filter(kind="outbound_status", data__status="unknown").exists()


def test_a_late_answer_after_the_sweep_still_records_the_truth(account, follower):
    queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    outbound.sweep(now=timezone.now() + timedelta(seconds=outbound.lease_seconds() + 1))
    assert outbound._settle(claimed, W, S.SENT) is True
    assert OutboundMessage.objects.get(pk=claimed.pk).status == S.SENT


def test_the_sweeper_reenqueues_due_messages_whose_task_was_lost(account, follower):
    queue(account, follower)  # no on_commit in this test: the task was "lost"
    assert DBTaskResult.objects.count() == 0
    assert outbound.sweep() == (0, 0)  # within the grace period the normal task may still come
    later = timezone.now() + outbound.SWEEP_GRACE + timedelta(seconds=1)
    assert outbound.sweep(now=later) == (0, 1)
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["kwargs"] == {"contact_id": follower.pk}
    # A task already waiting is not duplicated.
    assert outbound.sweep(now=later) == (0, 0)


def test_the_sweeper_leaves_a_follower_in_flight_and_one_with_a_waiting_task_alone(account, follower):
    from tests.sending.conftest import open_window
    from wechat import tasks

    others = [open_window(Contact.objects.create(account=account, openid=f"o_other_{i}")) for i in range(2)]
    queue(account, follower, "一")
    queue(account, follower, "二")
    for other in others:
        queue(account, other)  # no on_commit in this test: every task was "lost"
    outbound.claim_next(contact_id=follower.pk, worker=W)  # its worker goes on with "二" afterwards
    tasks.enqueue_delivery(others[0].pk)  # a task is already waiting for this one
    later = timezone.now() + outbound.SWEEP_GRACE + timedelta(seconds=1)
    assert outbound.sweep(now=later) == (0, 1)
    waiting = sorted(t.args_kwargs["kwargs"]["contact_id"] for t in DBTaskResult.objects.all())
    assert waiting == sorted([others[0].pk, others[1].pk])


def test_messages_behind_a_lost_worker_are_picked_up_by_the_sweeper(account, follower):
    queue(account, follower, "一")
    second = queue(account, follower, "二")
    outbound.claim_next(contact_id=follower.pk, worker=W)
    later = timezone.now() + timedelta(seconds=outbound.lease_seconds() + outbound.SWEEP_GRACE.seconds + 1)
    assert outbound.sweep(now=later) == (1, 1)
    assert outbound.claim_next(contact_id=follower.pk, worker="new", now=later).pk == second.pk


def test_a_token_that_cannot_be_had_fails_or_retries_by_its_cause(account, follower):
    message = queue(account, follower)
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W)
    outbound._settle_error(claimed, W, errors.TokenUnavailable(errors.NotSent()))
    message.refresh_from_db()
    assert message.status == S.QUEUED  # nothing was sent: safe to try again
    claimed = outbound.claim_next(contact_id=follower.pk, worker=W, now=timezone.now() + timedelta(seconds=5))
    outbound._settle_error(claimed, W, errors.TokenUnavailable(errors.APIError(40125)))
    message.refresh_from_db()
    assert message.status == S.FAILED
    assert message.reason == f"获取 access_token 失败：{errors.describe(40125)}"
