"""Store one push: the follower, the inbound row, the reply window, the conversation.

`receive` is the only writer for inbound traffic. Everything happens in one
transaction so that the window a send is later gated on always matches the
rows that opened it; agents are told after commit (wechat.live).

This is the webhook's hot path, so it speaks SQL directly instead of through
the ORM (query compilation was most of a push's time, docs/benchmarks.md §1).
In the common case — a known follower with a live conversation — a push is
five statements between BEGIN and COMMIT:

1. the follower's window and live conversation, the contact row locked
   (`FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transaction already holds
   the only write lock), so the window is computed from what a concurrent
   send's quota reservation left, never from a stale read ("lock, then look");
2. the inbound row, `ON CONFLICT DO NOTHING` — no row back means WeChat sent
   this push before (MsgId, or sender + time + event): nothing else is written;
3. the contact's window (wechat.window, pure rules, decides it);
4. the conversation touched (waiting since, woken from snoozed/pending);
5. the LiveUpdate row (wechat.live).

A first push, or the first after a resolve, creates the contact or the
conversation through the ORM; those are rare.
"""

import logging
from dataclasses import dataclass
from datetime import UTC

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from wechat import live, rawsql, window
from wechat.models import Contact, Conversation, InboundMessage, OfficialAccount

log = logging.getLogger(__name__)

MEDIA_TYPES = frozenset({"image", "voice", "video", "shortvideo"})
# Pushes that start (or reopen) a conversation: anything that opens a window.
_STARTS_CONVERSATION = {window.LONG, window.SHORT}
_GRANT_FIELDS = ("opened_by", "opened_at", "expires_at", "quota", "used")
_WINDOW_COLUMNS = tuple(f"{p}_{n}" for p in ("long", "short") for n in _GRANT_FIELDS)


@dataclass(frozen=True)
class Received:
    message: InboundMessage | None
    duplicate: bool


@dataclass(frozen=True)
class _Follower:
    contact_id: int
    state: window.WindowState
    conversation_id: int | None
    conversation_status: str | None


def receive(*, account, push, raw_xml="", now=None):
    """Store `push` for `account` exactly once. Returns Received(message, duplicate)."""
    now = now or timezone.now()
    with transaction.atomic():
        follower = _locked_follower(account.pk, push.from_user)
        if follower is None:
            _create_contact(account, push.from_user, now)
            follower = _locked_follower(account.pk, push.from_user)
        message = _new_message(account, follower, push, raw_xml, now)
        if not rawsql.insert(message, ignore_conflicts=True):
            OfficialAccount.objects.filter(pk=account.pk).update(duplicate_pushes=F("duplicate_pushes") + 1)
            log.info(
                "duplicate push dropped: account=%s type=%s event=%s msgid=%s from=%s",
                account.appid,
                push.msg_type,
                push.event,
                push.msg_id,
                push.from_user,
            )
            return Received(None, True)
        _update_window(follower, push, now)
        conversation_id = follower.conversation_id
        if conversation_id is not None:
            _touch_conversation(conversation_id, message, now)
        elif window.classify(push.msg_type, push.event) in _STARTS_CONVERSATION:
            conversation_id = _start_conversation(account, follower.contact_id, message, now)
            message.conversation_id = conversation_id
            InboundMessage.objects.filter(pk=message.pk).update(conversation_id=conversation_id)
        live.record(
            account_id=account.pk,
            conversation_id=conversation_id,
            kind="inbound",
            data={"message": message.pk, "contact": follower.contact_id, "preview": message.content[:140]},
        )
        if message.media_status == InboundMessage.MediaStatus.PENDING:
            transaction.on_commit(lambda: _enqueue_media_fetch(message.pk))
    return Received(message, False)


def _locked_follower(account_id, openid):
    lock = " FOR UPDATE OF k" if connection.features.has_select_for_update_of else ""
    columns = ", ".join(f"k.{c}" for c in _WINDOW_COLUMNS)
    # Identifiers come from the models; every value is a bound parameter.
    sql = (
        f"SELECT k.id, k.subscribed, {columns}, c.id, c.status "  # noqa: S608
        f"FROM {Contact._meta.db_table} k LEFT JOIN {Conversation._meta.db_table} c "
        "ON c.contact_id = k.id AND c.status <> %s "
        f"WHERE k.account_id = %s AND k.openid = %s{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Conversation.Status.RESOLVED, account_id, openid])
        row = cursor.fetchone()
    if row is None:
        return None
    contact_id, subscribed, *grants, conversation_id, status = row
    long, short = (_grant(grants[i : i + 5]) for i in (0, 5))
    return _Follower(contact_id, window.WindowState(bool(subscribed), long, short), conversation_id, status)


def _grant(values):
    opened_by, opened_at, expires_at, quota, used = values
    return window.grant_from_fields(opened_by, _aware(opened_at), _aware(expires_at), quota, used)


def _aware(value):
    # SQLite hands back naive UTC datetimes (Django stores them that way).
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _create_contact(account, openid, now):
    try:
        with transaction.atomic():
            Contact.objects.create(account=account, openid=openid, first_seen_at=now)
    except IntegrityError:
        pass  # a concurrent push from the same new follower created it first


def _new_message(account, follower, push, raw_xml, now):
    media_id = getattr(push, "media_id", "") or ""
    pending = push.msg_type in MEDIA_TYPES and bool(media_id)
    return InboundMessage(
        account=account,
        contact_id=follower.contact_id,
        conversation_id=follower.conversation_id,
        msg_type=push.msg_type,
        event=push.event,
        msg_id=push.msg_id,
        from_user=push.from_user,
        to_user=push.to_user,
        create_time=push.create_time,
        sent_at=push.sent_at,
        received_at=now,
        content=push.text(),
        data=_jsonable(push.data()),
        raw_xml=raw_xml,
        media_id=media_id,
        media_status=InboundMessage.MediaStatus.PENDING if pending else "",
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _update_window(follower, push, now):
    # The window runs from when WeChat says the follower acted, not from when
    # a retried push finally reached us; never from the future.
    acted_at = min(push.sent_at, now)
    state = window.apply_action(follower.state, msg_type=push.msg_type, event=push.event, at=acted_at)
    values = {"subscribed": state.subscribed, "last_inbound_at": acted_at}
    for prefix, grant in (("long", state.long), ("short", state.short)):
        for name, value in window.grant_to_fields(grant).items():
            values[f"{prefix}_{name}"] = value
    if push.event == "subscribe":
        values["subscribed_at"] = acted_at
    elif push.event == "unsubscribe":
        values["unsubscribed_at"] = acted_at
    rawsql.update(Contact, follower.contact_id, values)


def _asks_for_answer(message):
    # A message or a menu click asks for an answer; a bare follow does not.
    opens = window.classify(message.msg_type, message.event) in _STARTS_CONVERSATION
    return opens and message.event != "subscribe"


def _touch_conversation(conversation_id, message, now):
    values = {"last_message_at": now, "last_message_preview": message.content[:140], "last_message_direction": "in"}
    expressions = []
    if _asks_for_answer(message):
        # Decided in the statement, not from a read: an agent's concurrent
        # reply (which clears waiting_since) is never overwritten.
        stamp = rawsql.prep(Conversation, "waiting_since", now)
        expressions += [
            ("waiting_since", "COALESCE(waiting_since, %s)", [stamp]),
            ("first_inbound_at", "COALESCE(first_inbound_at, %s)", [stamp]),
        ]
    if message.msg_type in window.MESSAGE_TYPES:
        # A follower writing again wakes a snoozed or pending conversation.
        asleep = [Conversation.Status.SNOOZED, Conversation.Status.PENDING]
        expressions += [
            ("snoozed_until", "CASE WHEN status IN (%s, %s) THEN NULL ELSE snoozed_until END", asleep),
            ("status", "CASE WHEN status IN (%s, %s) THEN %s ELSE status END", [*asleep, Conversation.Status.OPEN]),
        ]
    rawsql.update(Conversation, conversation_id, values, expressions)


def _start_conversation(account, contact_id, message, now):
    asks = _asks_for_answer(message)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                account=account,
                contact_id=contact_id,
                last_message_at=now,
                last_message_preview=message.content[:140],
                last_message_direction="in",
                waiting_since=now if asks else None,
                first_inbound_at=now if asks else None,
            )
    except IntegrityError:
        # Cannot happen while the contact row is locked; kept for safety.
        conversation = Conversation.objects.exclude(status=Conversation.Status.RESOLVED).get(contact_id=contact_id)
        _touch_conversation(conversation.pk, message, now)
    return conversation.pk


def _enqueue_media_fetch(message_id):
    """Hand the download to the media task; never on the webhook's path (§6.5)."""
    try:
        from wechat.media import enqueue_fetch
    except ImportError:  # the sending side is not installed yet
        return
    try:
        enqueue_fetch(message_id)
    except Exception:
        log.warning("could not enqueue media fetch for inbound %s", message_id, exc_info=True)
