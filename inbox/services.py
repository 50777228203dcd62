"""What agents do to conversations: take, assign, transfer, resolve, reopen, snooze, notes, replies.

Each change happens in one transaction that writes the conversation, an
`inbox.Activity` row for the timeline, a `wechat.AuditLog` row, and a
LiveUpdate through `wechat.live.record` (write, then push). Permission checks
live here too, so the page, the socket and any future API refuse the same way.
Sending itself belongs to `wechat.outbound`; the inbox only decides *who* may.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import access, roles
from inbox.models import Activity, ReadMarker
from wechat import live
from wechat.models import AuditLog, Contact, Conversation, InboundMessage

# WeChat's updateremark takes fewer than 30 characters (§9); keep our remark
# within it so it can be synced later without being cut.
REMARK_MAX_CHARS = 29
NOTE_MAX_CHARS = 4000


class ActionRefused(Exception):
    """The user may not do this (or it makes no sense now); the message says why."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def _now(now=None):
    return now or timezone.now()


def _locked(conversation):
    # Row lock so two agents taking the same conversation serialize; the
    # loser sees the winner's assignee instead of overwriting it.
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "assignee")
        .get(pk=conversation.pk)
    )


def _require_visible(actor, conversation):
    if not access.can_see_conversation(actor, conversation):
        raise ActionRefused(_("你无权查看这个会话"))


def _record(conversation, *, actor, kind, activity_kind, text="", target=None, data=None, now):
    activity = Activity.objects.create(
        conversation=conversation, actor=actor, kind=activity_kind, text=text, target=target, created_at=now
    )
    AuditLog.objects.create(
        actor=actor,
        action=f"conversation.{kind}",
        object_type="conversation",
        object_id=str(conversation.pk),
        summary=f"#{conversation.pk} {kind}"[:255],
        data={"activity": activity.pk, **(data or {})},
        created_at=now,
    )
    live.record(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        kind="conversation",
        data={
            "action": kind,
            "activity": activity.pk,
            "status": conversation.status,
            "assignee": conversation.assignee_id,
            "actor": actor.pk if actor else None,
        },
    )
    return activity


def assign_conversation(*, conversation, assignee, actor, now=None):
    """Give the conversation to `assignee` (None: back to Unassigned).

    Agents may take an unassigned conversation, hand their own to a
    colleague, or give their own back; moving someone else's is a
    supervisor's call.
    """
    now = _now(now)
    with transaction.atomic():
        conv = _locked(conversation)
        _require_visible(actor, conv)
        if assignee is not None and not access.can_work_account(assignee, conv.account_id):
            raise ActionRefused(_("%(name)s 不负责这个公众号") % {"name": access.display_name(assignee)})
        current = conv.assignee_id
        if current not in (None, actor.pk) and not roles.is_supervisor(actor):
            raise ActionRefused(
                _("会话已由 %(name)s 负责，只有主管可以改派") % {"name": access.display_name(conv.assignee)}
            )
        new_id = assignee.pk if assignee else None
        if current == new_id:
            return conv
        conv.assignee = assignee
        conv.save(update_fields=["assignee"])
        if assignee is None:
            _record(
                conv,
                actor=actor,
                kind="unassigned",
                activity_kind=Activity.Kind.UNASSIGNED,
                now=now,
                data={"from": current},
            )
        else:
            action = "assigned" if current is None else "transferred"
            _record(
                conv,
                actor=actor,
                kind=action,
                activity_kind=Activity.Kind.ASSIGNED,
                target=assignee,
                now=now,
                data={"from": current, "to": new_id},
            )
    conversation.assignee = conv.assignee
    conversation.assignee_id = conv.assignee_id
    return conv


def take_conversation(*, conversation, actor, now=None):
    """Take an unassigned conversation. Refused when someone was faster."""
    with transaction.atomic():
        conv = _locked(conversation)
        if conv.assignee_id is not None and conv.assignee_id != actor.pk:
            raise ActionRefused(_("%(name)s 已经领取了这个会话") % {"name": access.display_name(conv.assignee)})
        return assign_conversation(conversation=conv, assignee=actor, actor=actor, now=now)


def transfer_conversation(*, conversation, to_user, actor, now=None):
    if to_user is None:
        raise ActionRefused(_("请选择要转给的同事"))
    return assign_conversation(conversation=conversation, assignee=to_user, actor=actor, now=now)


def _require_can_act(actor, conv):
    """Changing the state of a conversation: its assignee, a supervisor, or anyone if unassigned."""
    _require_visible(actor, conv)
    if conv.assignee_id not in (None, actor.pk) and not roles.is_supervisor(actor):
        raise ActionRefused(
            _("会话由 %(name)s 负责，只有负责人或主管可以操作") % {"name": access.display_name(conv.assignee)}
        )


def resolve_conversation(*, conversation, actor, now=None):
    now = _now(now)
    with transaction.atomic():
        conv = _locked(conversation)
        _require_can_act(actor, conv)
        if conv.status == Conversation.Status.RESOLVED:
            return conv
        conv.status = Conversation.Status.RESOLVED
        conv.resolved_at = now
        conv.snoozed_until = None
        conv.waiting_since = None
        conv.save(update_fields=["status", "resolved_at", "snoozed_until", "waiting_since"])
        _record(conv, actor=actor, kind="resolved", activity_kind=Activity.Kind.RESOLVED, now=now)
    return conv


def reopen_conversation(*, conversation, actor, now=None):
    now = _now(now)
    try:
        with transaction.atomic():
            conv = _locked(conversation)
            _require_can_act(actor, conv)
            if conv.status == Conversation.Status.OPEN:
                return conv
            conv.status = Conversation.Status.OPEN
            conv.snoozed_until = None
            conv.resolved_at = None
            conv.save(update_fields=["status", "snoozed_until", "resolved_at"])
            _record(conv, actor=actor, kind="reopened", activity_kind=Activity.Kind.REOPENED, now=now)
    except IntegrityError as exc:
        # The follower wrote again after the resolve and a newer conversation
        # is already live; a contact has at most one (model constraint).
        raise ActionRefused(_("这位粉丝已有一个进行中的会话，请在那里继续")) from exc
    return conv


def snooze_conversation(*, conversation, actor, until, now=None):
    now = _now(now)
    if until is None or until <= now:
        raise ActionRefused(_("暂缓时间必须晚于现在"))
    if until > now + timedelta(days=30):
        raise ActionRefused(_("暂缓最长 30 天"))
    with transaction.atomic():
        conv = _locked(conversation)
        _require_can_act(actor, conv)
        if conv.status == Conversation.Status.RESOLVED:
            raise ActionRefused(_("已解决的会话不能暂缓，请先重新打开"))
        conv.status = Conversation.Status.SNOOZED
        conv.snoozed_until = until
        conv.save(update_fields=["status", "snoozed_until"])
        text = timezone.localtime(until).strftime("%Y-%m-%d %H:%M")
        _record(
            conv,
            actor=actor,
            kind="snoozed",
            activity_kind=Activity.Kind.SNOOZED,
            text=text,
            now=now,
            data={"until": until.isoformat()},
        )
    return conv


def mark_pending(*, conversation, actor, now=None):
    """Waiting on the follower (Chatwoot's "pending"): off the open queue until they write."""
    now = _now(now)
    with transaction.atomic():
        conv = _locked(conversation)
        _require_can_act(actor, conv)
        if conv.status == Conversation.Status.RESOLVED:
            raise ActionRefused(_("已解决的会话请先重新打开"))
        if conv.status == Conversation.Status.PENDING:
            return conv
        conv.status = Conversation.Status.PENDING
        conv.snoozed_until = None
        conv.save(update_fields=["status", "snoozed_until"])
        _record(conv, actor=actor, kind="pending", activity_kind=Activity.Kind.PENDING, now=now)
    return conv


def wake_snoozed_conversations(*, now=None, limit=200):
    """Snoozes that ran out go back to Open, each with its activity and live update."""
    now = _now(now)
    woken = 0
    ids = list(
        Conversation.objects.filter(status=Conversation.Status.SNOOZED, snoozed_until__lte=now)
        .order_by("snoozed_until")
        .values_list("id", flat=True)[:limit]
    )
    for conv_id in ids:
        with transaction.atomic():
            conv = (
                Conversation.objects.select_for_update()
                .filter(pk=conv_id, status=Conversation.Status.SNOOZED, snoozed_until__lte=now)
                .first()
            )
            if conv is None:
                continue
            conv.status = Conversation.Status.OPEN
            conv.snoozed_until = None
            conv.save(update_fields=["status", "snoozed_until"])
            _record(
                conv, actor=None, kind="reopened", activity_kind=Activity.Kind.REOPENED, text=_("暂缓到期"), now=now
            )
            woken += 1
    return woken


def add_note(*, conversation, actor, text, now=None):
    """A private note: seen by colleagues in the timeline, never sent to the follower."""
    now = _now(now)
    text = (text or "").strip()
    if not text:
        raise ActionRefused(_("备注不能为空"))
    if len(text) > NOTE_MAX_CHARS:
        raise ActionRefused(_("备注最多 %(n)d 个字符") % {"n": NOTE_MAX_CHARS})
    with transaction.atomic():
        conv = _locked(conversation)
        _require_visible(actor, conv)
        return _record(conv, actor=actor, kind="note", activity_kind=Activity.Kind.NOTE, text=text, now=now)


def update_remark(*, contact, actor, remark, now=None):
    """The agents' name for a follower (WeChat no longer gives nicknames, §9)."""
    now = _now(now)
    remark = (remark or "").strip()
    if len(remark) > REMARK_MAX_CHARS:
        raise ActionRefused(_("备注名最多 %(n)d 个字") % {"n": REMARK_MAX_CHARS})
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if not access.can_see_account(actor, locked.account_id):
            raise ActionRefused(_("你无权查看这位粉丝"))
        old = locked.remark
        if old == remark:
            return locked
        locked.remark = remark
        locked.save(update_fields=["remark"])
        AuditLog.objects.create(
            actor=actor,
            action="contact.remark",
            object_type="contact",
            object_id=str(locked.pk),
            summary=f"{locked.openid}: {remark}"[:255],
            data={"from": old, "to": remark},
            created_at=now,
        )
        live_conv = (
            Conversation.objects.filter(contact=locked)
            .exclude(status=Conversation.Status.RESOLVED)
            .values_list("id", flat=True)
            .first()
        )
        live.record(
            account_id=locked.account_id,
            conversation_id=live_conv,
            kind="contact",
            data={"contact": locked.pk, "remark": remark},
        )
    contact.remark = remark
    return locked


def mark_read(*, conversation, user):
    """Everything inbound so far is read by `user` (per-user unread counts)."""
    last = (
        InboundMessage.objects.filter(conversation=conversation).order_by("-id").values_list("id", flat=True).first()
    ) or 0
    marker, created = ReadMarker.objects.get_or_create(
        user=user, conversation=conversation, defaults={"last_read_inbound_id": last}
    )
    if not created and marker.last_read_inbound_id < last:
        # Never move backwards when two tabs race.
        ReadMarker.objects.filter(pk=marker.pk, last_read_inbound_id__lt=last).update(last_read_inbound_id=last)
    return last


# --- replies: who may send, then wechat.outbound decides whether WeChat allows it ---


def _outbound():
    # Imported late: the sending side is built in parallel, and the inbox pages
    # must keep working (read-only) if it is missing.
    from wechat import outbound

    return outbound


def send_reply(*, conversation, actor, msgtype, data, send_at=None, now=None):
    """Queue a reply through `wechat.outbound.queue_message`.

    Raises ActionRefused when this agent may not send here, and lets
    `outbound.SendRefused` / `builders.BuildError` through for the page to show.
    """
    blocker = access.send_blocker(actor, conversation)
    if blocker:
        raise ActionRefused(blocker)
    return _outbound().queue_message(
        account=conversation.account,
        contact=conversation.contact,
        msgtype=msgtype,
        data=data,
        agent=actor,
        conversation=conversation,
        send_at=send_at,
        now=now,
    )


def cancel_reply(*, message, actor):
    if message.conversation is not None:
        blocker = access.send_blocker(actor, message.conversation)
        if blocker:
            raise ActionRefused(blocker)
    elif not access.can_see_account(actor, message.account_id):
        raise ActionRefused(_("你无权查看这个会话"))
    if not _outbound().cancel_message(message=message, actor=actor):
        raise ActionRefused(_("消息已开始发送，无法取消"))
    return message


def resend_reply(*, message, actor):
    if message.conversation is None:
        raise ActionRefused(_("这条消息不属于任何会话"))
    blocker = access.send_blocker(actor, message.conversation)
    if blocker:
        raise ActionRefused(blocker)
    if not message.can_resend:
        raise ActionRefused(_("只有失败或结果未知的消息可以重发"))
    return _outbound().resend_message(message=message, agent=actor)


def notify_typing(*, conversation, agent):
    """Tell the follower an agent is typing (§4); the sender throttles and never blocks."""
    if access.send_blocker(agent, conversation):
        return  # only the one who may answer shows as typing to the follower
    try:
        outbound = _outbound()
    except ImportError:
        return
    outbound.notify_typing(contact=conversation.contact, agent=agent)


def agents_for(conversation):
    """Colleagues who can take this conversation (for the assign menu)."""
    User = get_user_model()
    return (
        User.objects.filter(is_active=True)
        .filter(
            Q(official_accounts=conversation.account_id)
            | Q(groups__name__in=[roles.SUPERVISOR, roles.ADMIN])
            | Q(is_superuser=True)
        )
        .order_by("first_name", "username")
        .distinct()
    )
