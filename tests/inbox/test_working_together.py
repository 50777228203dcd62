"""Take, assign, transfer, resolve, reopen, snooze, pending, notes: each writes activity, audit and a live update."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import services
from inbox.models import Activity
from tests.inbox.conftest import follower_says
from wechat.models import AuditLog, Conversation, LiveUpdate


def last_live(conversation):
    return LiveUpdate.objects.filter(conversation=conversation).order_by("-id").first()


def test_an_agent_takes_an_unassigned_conversation(conversation, agent):
    services.take_conversation(conversation=conversation, actor=agent)

    conversation.refresh_from_db()
    assert conversation.assignee == agent
    activity = Activity.objects.get(conversation=conversation)
    assert (activity.kind, activity.actor, activity.target) == ("assigned", agent, agent)
    audit = AuditLog.objects.get(action="conversation.assigned")
    assert audit.actor == agent and audit.object_id == str(conversation.pk)
    update = last_live(conversation)
    assert update.kind == "conversation"
    assert update.data["action"] == "assigned" and update.data["assignee"] == agent.pk


def test_taking_a_conversation_a_colleague_already_took_is_refused(conversation, agent, colleague):
    services.take_conversation(conversation=conversation, actor=colleague)

    with pytest.raises(services.ActionRefused, match="小王 已经领取了这个会话"):
        services.take_conversation(conversation=conversation, actor=agent)
    conversation.refresh_from_db()
    assert conversation.assignee == colleague


def test_the_assignee_transfers_to_a_colleague(assigned, agent, colleague):
    services.transfer_conversation(conversation=assigned, to_user=colleague, actor=agent)

    assigned.refresh_from_db()
    assert assigned.assignee == colleague
    assert last_live(assigned).data["action"] == "transferred"
    assert AuditLog.objects.get(action="conversation.transferred").data["to"] == colleague.pk


def test_an_agent_cannot_move_a_colleagues_conversation(assigned, colleague):
    with pytest.raises(services.ActionRefused, match="只有主管可以改派"):
        services.assign_conversation(conversation=assigned, assignee=colleague, actor=colleague)


def test_a_supervisor_can_move_anyones_conversation(assigned, colleague, supervisor):
    services.assign_conversation(conversation=assigned, assignee=colleague, actor=supervisor)
    assigned.refresh_from_db()
    assert assigned.assignee == colleague


def test_a_conversation_cannot_go_to_someone_outside_the_account(conversation, agent, outsider):
    with pytest.raises(services.ActionRefused, match="不负责这个公众号"):
        services.assign_conversation(conversation=conversation, assignee=outsider, actor=agent)
    assert not Activity.objects.exists()
    assert not LiveUpdate.objects.filter(kind="conversation").exists()


def test_an_outsider_can_do_nothing_with_the_conversation(conversation, outsider):
    with pytest.raises(services.ActionRefused, match="无权"):
        services.take_conversation(conversation=conversation, actor=outsider)
    with pytest.raises(services.ActionRefused, match="无权"):
        services.add_note(conversation=conversation, actor=outsider, text="偷看")


def test_giving_a_conversation_back_makes_it_unassigned(assigned, agent):
    services.assign_conversation(conversation=assigned, assignee=None, actor=agent)
    assigned.refresh_from_db()
    assert assigned.assignee is None
    assert Activity.objects.get(conversation=assigned).kind == "unassigned"


def test_resolve_and_reopen(assigned, agent):
    services.resolve_conversation(conversation=assigned, actor=agent)
    assigned.refresh_from_db()
    assert assigned.status == "resolved" and assigned.resolved_at is not None
    assert last_live(assigned).data == {
        "action": "resolved",
        "activity": Activity.objects.get(kind="resolved").pk,
        "status": "resolved",
        "assignee": agent.pk,
        "actor": agent.pk,
    }

    services.reopen_conversation(conversation=assigned, actor=agent)
    assigned.refresh_from_db()
    assert assigned.status == "open" and assigned.resolved_at is None
    kinds = list(Activity.objects.filter(conversation=assigned).order_by("id").values_list("kind", flat=True))
    assert kinds == ["resolved", "reopened"]
    assert AuditLog.objects.filter(action__in=["conversation.resolved", "conversation.reopened"]).count() == 2


def test_reopening_is_refused_when_the_follower_already_has_a_newer_conversation(account, assigned, agent):
    services.resolve_conversation(conversation=assigned, actor=agent)
    follower_says(account, "又是我")  # a new live conversation for the same follower
    assert Conversation.objects.exclude(status="resolved").count() == 1

    with pytest.raises(services.ActionRefused, match="已有一个进行中的会话"):
        services.reopen_conversation(conversation=assigned, actor=agent)
    assigned.refresh_from_db()
    assert assigned.status == "resolved"


def test_only_the_assignee_or_a_supervisor_resolves(assigned, colleague, supervisor):
    with pytest.raises(services.ActionRefused, match="只有负责人或主管"):
        services.resolve_conversation(conversation=assigned, actor=colleague)
    services.resolve_conversation(conversation=assigned, actor=supervisor)
    assigned.refresh_from_db()
    assert assigned.status == "resolved"


def test_snooze_until_a_time_then_wake_up(assigned, agent):
    now = timezone.now()
    services.snooze_conversation(conversation=assigned, actor=agent, until=now + timedelta(hours=2), now=now)
    assigned.refresh_from_db()
    assert assigned.status == "snoozed" and assigned.snoozed_until == now + timedelta(hours=2)
    assert services.wake_snoozed_conversations(now=now + timedelta(hours=1)) == 0

    assert services.wake_snoozed_conversations(now=now + timedelta(hours=2, seconds=1)) == 1
    assigned.refresh_from_db()
    assert assigned.status == "open" and assigned.snoozed_until is None
    woke = Activity.objects.filter(conversation=assigned).order_by("-id").first()
    assert woke.kind == "reopened" and woke.actor is None and woke.text == "暂缓到期"


def test_snoozing_into_the_past_is_refused(assigned, agent):
    now = timezone.now()
    with pytest.raises(services.ActionRefused, match="晚于现在"):
        services.snooze_conversation(conversation=assigned, actor=agent, until=now - timedelta(minutes=1), now=now)
    assigned.refresh_from_db()
    assert assigned.status == "open"


def test_a_follower_writing_again_wakes_a_snoozed_conversation(account, assigned, agent):
    services.snooze_conversation(conversation=assigned, actor=agent, until=timezone.now() + timedelta(days=1))
    follower_says(account, "还在吗？")
    assigned.refresh_from_db()
    assert assigned.status == "open"


def test_pending_waits_for_the_follower(account, assigned, agent):
    services.mark_pending(conversation=assigned, actor=agent)
    assigned.refresh_from_db()
    assert assigned.status == "pending"
    follower_says(account, "收到了，谢谢")
    assigned.refresh_from_db()
    assert assigned.status == "open"


def test_a_private_note_is_recorded_and_pushed_but_never_sent(assigned, colleague):
    note = services.add_note(conversation=assigned, actor=colleague, text="这位客户上周投诉过，注意语气")
    assert note.kind == "note" and note.text == "这位客户上周投诉过，注意语气"
    assert last_live(assigned).data["action"] == "note"
    assert not assigned.outbound.exists()


def test_an_empty_note_is_refused(assigned, agent):
    with pytest.raises(services.ActionRefused, match="备注不能为空"):
        services.add_note(conversation=assigned, actor=agent, text="   ")
    assert not Activity.objects.exists()


def test_the_remark_is_saved_audited_and_pushed(conversation, agent):
    services.update_remark(contact=conversation.contact, actor=agent, remark="王女士（VIP）")
    conversation.contact.refresh_from_db()
    assert conversation.contact.remark == "王女士（VIP）"
    assert AuditLog.objects.get(action="contact.remark").data == {"from": "", "to": "王女士（VIP）"}
    assert last_live(conversation).kind == "contact"


def test_a_remark_longer_than_wechat_allows_is_refused(conversation, agent):
    # §9: updateremark takes fewer than 30 characters.
    with pytest.raises(services.ActionRefused, match="29"):
        services.update_remark(contact=conversation.contact, actor=agent, remark="长" * 30)
    conversation.contact.refresh_from_db()
    assert conversation.contact.remark == ""


def test_read_markers_only_move_forward(account, conversation, agent):
    first = services.mark_read(conversation=conversation, user=agent)
    later = follower_says(account, "第二条")
    assert services.mark_read(conversation=conversation, user=agent) == later.pk > first
