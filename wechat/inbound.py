"""Store one push: the follower, the inbound row, the reply window, the conversation.

`receive` is the only writer for inbound traffic. Everything happens in one
transaction so that the window a send is later gated on always matches the
rows that opened it; agents are told after commit (wechat.live).

This is the webhook's hot path, so it speaks SQL directly instead of through
the ORM (query compilation was most of a push's time, docs/benchmarks.md §1).
A push from a known follower is:

1. one SELECT of the follower's window and live conversation with the contact
   row locked (`FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE transaction
   already holds the only write lock), so the window is computed from what a
   concurrent send's quota reservation left, never from a stale read ("lock,
   then look"); on PostgreSQL it also draws the inbound row's id;
2. the writes, decided by wechat.window (pure rules): the inbound row with
   `ON CONFLICT DO NOTHING` — nothing back means WeChat sent this push before
   (MsgId, or sender + time + event) and nothing else may be written — then the
   contact's window, the conversation (waiting since, woken from snoozed or
   pending) and the LiveUpdate row. On PostgreSQL these four are ONE statement
   (data-modifying WITH clauses, each write conditional on the insert); on
   SQLite, where there is no round trip to save, four.

A first push inserts the contact (`ON CONFLICT DO NOTHING`) and reads it back
locked; a push that needs a conversation and has none (a first message, or the
first after a resolve) inserts it before the inbound row, which then names it.
A duplicate rolls the whole transaction back, so nothing it opened stays.
"""

import logging
from dataclasses import dataclass
from datetime import UTC

from django.db import connection, transaction
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
    next_message_id: int | None  # PostgreSQL: the inbound row's id, drawn in the same statement
    contact_id: int
    state: window.WindowState
    conversation_id: int | None


def receive(*, account, push, raw_xml="", now=None):
    """Store `push` for `account` exactly once. Returns Received(message, duplicate)."""
    now = now or timezone.now()
    with transaction.atomic():
        follower = _locked_follower(account.pk, push.from_user)
        if follower is None:
            _create_contact(account.pk, push.from_user, now)
            follower = _locked_follower(account.pk, push.from_user)
        message = _new_message(account, follower, push, raw_xml, now)
        opened = None
        if follower.conversation_id is None and window.classify(push.msg_type, push.event) in _STARTS_CONVERSATION:
            opened = message.conversation_id = _start_conversation(account.pk, follower.contact_id, message, now)
        store = _store_in_one_statement if follower.next_message_id is not None else _store_step_by_step
        stored = store(account, follower, message, push, now, touch=opened is None)
        if not stored:
            # A duplicate leaves nothing behind — not even a conversation opened for it.
            transaction.set_rollback(True)
        elif message.media_status == InboundMessage.MediaStatus.PENDING:
            transaction.on_commit(lambda: _enqueue_media_fetch(message.pk))
    if not stored:
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
    return Received(message, False)


def _store_step_by_step(account, follower, message, push, now, *, touch):
    """SQLite (no round trips to save): insert, window, conversation, LiveUpdate as four statements."""
    if not rawsql.insert(message, ignore_conflicts=True):
        return False
    rawsql.update(Contact, follower.contact_id, _window_values(follower, push, now))
    if touch and message.conversation_id is not None:
        rawsql.update(Conversation, message.conversation_id, *_touch(message, now))
    live.record(
        account_id=account.pk, conversation_id=message.conversation_id, kind="inbound", data=_live_data(message)
    )
    return True


def _store_in_one_statement(account, follower, message, push, now, *, touch):
    """PostgreSQL: insert, window, conversation and LiveUpdate in one round trip."""
    message.pk = follower.next_message_id  # drawn by _locked_follower, so the LiveUpdate can name it
    update = live.new(
        account_id=account.pk, conversation_id=message.conversation_id, kind="inbound", data=_live_data(message)
    )
    parts = [rawsql.insert_statement(message, ignore_conflicts=True)]
    stored = "EXISTS (SELECT 1 FROM m)"
    parts.append(
        rawsql.update_statement(Contact, follower.contact_id, _window_values(follower, push, now), only_if=stored)
    )
    if touch and message.conversation_id is not None:
        values, expressions = _touch(message, now)
        parts.append(
            rawsql.update_statement(Conversation, message.conversation_id, values, expressions, only_if=stored)
        )
    names = ["m", "k", "c"][: len(parts)]
    sql = "WITH " + ", ".join(f"{name} AS ({part})" for name, (part, _) in zip(names, parts, strict=True))
    live_sql, live_params = rawsql.insert_statement(update, source="m")
    params = [p for _, part_params in parts for p in part_params] + live_params
    with rawsql.cursor() as cursor:
        cursor.execute(f"{sql} {live_sql}", params)
        row = cursor.fetchone()
    if row is None:
        message.pk = None
        return False
    rawsql.saved(message, message.pk)
    rawsql.saved(update, row[0])
    live.announce(update)
    return True


def _live_data(message):
    return {"message": message.pk, "contact": message.contact_id, "preview": message.content[:140]}


def _locked_follower(account_id, openid):
    postgres = connection.vendor == "postgresql"
    lock = " FOR UPDATE OF k" if connection.features.has_select_for_update_of else ""
    next_id = "nextval(pg_get_serial_sequence(%s, 'id'))" if postgres else "NULL"
    columns = ", ".join(f"k.{c}" for c in _WINDOW_COLUMNS)
    # Identifiers come from the models; every value is a bound parameter.
    sql = (
        f"SELECT {next_id}, k.id, k.subscribed, {columns}, c.id "  # noqa: S608
        f"FROM {Contact._meta.db_table} k LEFT JOIN {Conversation._meta.db_table} c "
        "ON c.contact_id = k.id AND c.status <> %s "
        f"WHERE k.account_id = %s AND k.openid = %s{lock}"
    )
    params = [Conversation.Status.RESOLVED, account_id, openid]
    with rawsql.cursor() as cursor:
        cursor.execute(sql, [InboundMessage._meta.db_table, *params] if postgres else params)
        row = cursor.fetchone()
    if row is None:
        return None
    next_message_id, contact_id, subscribed, *grants, conversation_id = row
    long, short = (_grant(grants[i : i + 5]) for i in (0, 5))
    state = window.WindowState(bool(subscribed), long, short)
    return _Follower(next_message_id, contact_id, state, conversation_id)


def _grant(values):
    opened_by, opened_at, expires_at, quota, used = values
    return window.grant_from_fields(opened_by, _aware(opened_at), _aware(expires_at), quota, used)


def _aware(value):
    # SQLite hands back naive UTC datetimes (Django stores them that way).
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _create_contact(account_id, openid, now):
    # A concurrent push from the same new follower may have created it first: fine.
    rawsql.insert(Contact(account_id=account_id, openid=openid, first_seen_at=now), ignore_conflicts=True)


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


def _window_values(follower, push, now):
    """The contact's columns after this push (wechat.window decides)."""
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
    return values


def _asks_for_answer(message):
    # A message or a menu click asks for an answer; a bare follow does not.
    opens = window.classify(message.msg_type, message.event) in _STARTS_CONVERSATION
    return opens and message.event != "subscribe"


def _touch(message, now):
    """(values, expressions) of the conversation row for one more inbound message."""
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
    return values, expressions


def _start_conversation(account_id, contact_id, message, now):
    asks = _asks_for_answer(message)
    conversation = Conversation(
        account_id=account_id,
        contact_id=contact_id,
        last_message_at=now,
        last_message_preview=message.content[:140],
        last_message_direction="in",
        waiting_since=now if asks else None,
        first_inbound_at=now if asks else None,
    )
    if not rawsql.insert(conversation, ignore_conflicts=True):
        # Cannot happen while the contact row is locked; kept for safety.
        conversation = Conversation.objects.exclude(status=Conversation.Status.RESOLVED).get(contact_id=contact_id)
        rawsql.update(Conversation, conversation.pk, *_touch(message, now))
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
