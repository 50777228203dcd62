"""The outbound ledger: queue, gate, deliver, settle (../shared/wechat-api.md §2, §3, §4, §10).

Life of a customer-service message (`OutboundMessage.status`):

    queued ──claim──▶ sending ──▶ sent
      ▲                  │   ├──▶ failed     (permanent errcode, or retries used up)
      └──── retry ───────┘   └──▶ unknown    (sent, no answer: never repeated on its own)
    queued ──cancel──▶ cancelled

* `queue_message` builds and validates the body, locks the Contact row and
  reserves one unit of the window quota (§3) in the same transaction that writes
  the ledger row, so queued-but-unsent messages count: a sixth message after a
  follower's message is refused right there. Delivery is enqueued on commit.
* A delivery task works on one contact: it claims the oldest due queued message
  with a compare-and-set UPDATE that also requires no other `sending` row for
  the contact (under the Contact row lock), sends it, settles it, and goes on
  with the next one. Order within a conversation is therefore preserved, and a
  duplicate task — or a second worker process — finds nothing to claim.
* Retries (§10.2) keep the row `queued` with `next_attempt_at` and a new task
  scheduled for then; messages behind it wait. -1 is retried 3 times (1, 2,
  4 s), 45011 after a minute; a request that never reached WeChat (refused or
  failed connection, HTTP 5xx, no token) is an outage and is retried for a few
  minutes. A read timeout or a reset after the request was written is
  `unknown` and never retried on its own. A `sending` row carries a lease;
  the sweeper turns one whose worker died into `unknown`, never into a resend.
* Failed and cancelled messages give their quota unit back (`window.release`);
  45015 / 45047 / 43004 from WeChat close or exhaust the window (§3.2).
* Every status change is a LiveUpdate (`outbound_status`) written in the same
  transaction and published after commit.

Conversation bookkeeping: an agent's reply counts as the response when it is
*queued* (the agent answered then; delivery is the worker's business), so
`waiting_since` clears and `first_response_at` is set at queue time — for a
scheduled send, when it goes out.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, close_old_connections, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from wechat import builders, client, errors, live, rawsql, window
from wechat.models import AuditLog, Contact, Conversation, MediaAsset, OfficialAccount, OutboundMessage

log = logging.getLogger("wechat.outbound")

S = OutboundMessage.Status

# §10.2: -1 → back off 1 s, 2 s, 4 s, at most 3 retries; 45011 → next minute.
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = (1, 2, 4)
RATE_LIMIT_BACKOFF_SECONDS = 60
# Trouble reaching WeChat at all (refused or failed connections, 5xx from
# its front end, no token to be had) is an outage, not an answer about this
# message: ride it out for a few minutes before calling the message failed.
OUTAGE_MAX_ATTEMPTS = 8
OUTAGE_BACKOFF_SECONDS = (1, 2, 4, 8, 16, 32, 60)
# The sweeper re-enqueues a due queued message only after this long, so it
# does not race the task that is normally about to deliver it.
SWEEP_GRACE = timedelta(seconds=10)
# §4: the typing state lasts 15 s; asking again while it is on is refused.
TYPING_INTERVAL = timedelta(seconds=15)

NOT_RESENDABLE = "not_resendable"
WRONG_ACCOUNT = "wrong_account"


class SendRefused(Exception):
    """The message may not be sent now; nothing was written, nothing used up."""

    def __init__(self, reason, message):
        self.reason = reason
        self.message = message
        super().__init__(message)


def lease_seconds():
    return int(getattr(settings, "SEND_LEASE_SECONDS", 60))


# --- queue, cancel, resend ------------------------------------------------------


def queue_message(
    *,
    account,
    contact,
    msgtype,
    data,
    agent=None,
    conversation=None,
    send_at=None,
    kf_account="",
    resend_of=None,
    now=None,
):
    """Validate, gate on the window, write the ledger row; delivery is enqueued on commit."""
    now = now or timezone.now()
    if contact.account_id != account.pk:
        raise SendRefused(WRONG_ACCOUNT, "该粉丝不属于这个公众号")
    body = builders.build(msgtype, openid=contact.openid, data=data, kf_account=kf_account)
    check_media(account, msgtype, body[msgtype], now=now)
    send_at = now if send_at is None or send_at <= now else send_at
    immediate = send_at <= now
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        decision, state = window.reserve(locked.window_state(), now)
        if not decision.allowed:
            log.info("send to contact %s refused at queue time: %s", contact.pk, decision.reason)
            raise SendRefused(decision.reason, decision.reason_text)
        locked.set_window_state(state)
        locked.save(update_fields=Contact.WINDOW_FIELDS)
        if conversation is None:
            conversation = _live_conversation(contact.pk)
        message = OutboundMessage.objects.create(
            account=account,
            contact=contact,
            conversation=conversation,
            agent=agent,
            msgtype=msgtype,
            payload=body,
            preview=builders.preview(msgtype, body[msgtype]),
            status=S.QUEUED,
            send_at=send_at,
            created_at=now,
            grant_kind=decision.slot,
            grant_opened_at=state.grant(decision.slot).opened_at,
            resend_of=resend_of,
        )
        if conversation is not None and immediate:
            _touch_conversation(conversation.pk, message.preview, now)
        live.record(
            account_id=account.pk,
            conversation_id=message.conversation_id,
            kind="outbound",
            data=_event_data(message),
        )
        if not immediate or not _backlog_ahead(message, now):
            run_after = None if immediate else send_at
            transaction.on_commit(lambda: _enqueue_delivery(contact.pk, run_after))
    contact.set_window_state(state)
    return message


def _backlog_ahead(message, now):
    """Is an earlier due message of this follower still queued? Then its task delivers this one too.

    Under the Contact lock this is exact: the task that will claim the
    earlier message claims after this transaction commits, and goes on with
    the follower's next due message — this one (see `deliver_due`). A task
    lost on the way is the sweeper's business, as for any message.
    """
    return (
        OutboundMessage.objects.filter(contact_id=message.contact_id, status=S.QUEUED, send_at__lte=now)
        .exclude(pk=message.pk)
        .exists()
    )


def cancel_message(*, message, actor=None):
    """Cancel a message that is still queued (scheduled, delayed or waiting to retry). Gives its unit back."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=message.contact_id)
        cancelled = OutboundMessage.objects.filter(pk=message.pk, status=S.QUEUED).update(
            status=S.CANCELLED, reason="已取消", next_attempt_at=None
        )
        if not cancelled:
            return False
        message.refresh_from_db()
        _release_quota(contact, message)
        live.record(
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            kind="outbound_status",
            data=_event_data(message),
        )
        AuditLog.objects.create(
            actor=actor,
            action="outbound.cancel",
            object_type="outbound",
            object_id=str(message.pk),
            summary=f"取消发送：{message.preview}"[:255],
        )
    return True


def resend_message(*, message, agent=None):
    """An agent's explicit resend of a failed or unknown message: a new ledger row, through the same gate."""
    if not message.can_resend:
        raise SendRefused(NOT_RESENDABLE, "只能重发“失败”或“结果未知”的消息")
    msgtype, payload, kf_account = builders.payload_of(message.payload)
    with transaction.atomic():
        new = queue_message(
            account=message.account,
            contact=message.contact,
            msgtype=msgtype,
            data=payload,
            agent=agent,
            conversation=message.conversation,
            kf_account=kf_account,
            resend_of=message,
        )
        AuditLog.objects.create(
            actor=agent,
            action="outbound.resend",
            object_type="outbound",
            object_id=str(message.pk),
            summary=f"重发（原状态：{message.get_status_display()}）：{message.preview}"[:255],
            data={"new": new.pk},
        )
    return new


def check_media(account, msgtype, payload, *, now=None):
    """§8.3: a media_id that is one of our MediaAsset rows must be of a kind the type needs.

    Unknown ids pass through: WeChat's errcode is the final word on them.
    """
    for field, media_id, kinds in builders.media_ids(msgtype, payload):
        asset = MediaAsset.objects.filter(account=account, media_id=media_id).first()
        if asset is None:
            continue
        if asset.kind not in kinds:
            wanted = "或".join(str(MediaAsset.Kind(k).label) for k in kinds)
            raise builders.BuildError(f"{field} 需要{wanted}素材，但“{asset.title}”是{asset.get_kind_display()}")
        if asset.is_expired(now):
            raise builders.BuildError(f"素材“{asset.title}”已过期（临时素材只保存 3 天），请重新上传后再发")


# --- typing ---------------------------------------------------------------------


def notify_typing(*, contact, agent=None, now=None):
    """Show "typing…" to the follower, at most once per 15 s per contact (§4). Never waits on WeChat."""
    now = now or timezone.now()
    if not window.check(contact.window_state(), now).allowed:
        return False
    claimed = (
        Contact.objects.filter(pk=contact.pk)
        .filter(Q(typing_sent_at__isnull=True) | Q(typing_sent_at__lte=now - TYPING_INTERVAL))
        .update(typing_sent_at=now)
    )
    if not claimed:
        return False
    transaction.on_commit(lambda: _enqueue_typing(contact.pk))
    return True


def send_typing(*, contact_id):
    """Task body: one Typing call; 45080 / 45081 are expected and quiet (§4)."""
    contact = Contact.objects.select_related("account").get(pk=contact_id)
    try:
        client.typing(contact.account, contact.openid)
    except errors.APIError as exc:
        if exc.errcode in errors.TYPING_QUIET:
            return "quiet"
        log.info("typing for contact %s refused: %s", contact_id, exc)
        return "refused"
    except errors.WeChatError as exc:
        log.info("typing for contact %s not sent: %s", contact_id, exc)
        return "error"
    return "ok"


# --- delivery -------------------------------------------------------------------


def deliver_due(*, contact_id, worker=None, limit=100):
    """Deliver a contact's due queued messages, oldest first, one at a time. Returns how many were handled."""
    worker = worker or client.worker_name()
    handled = 0
    accounts = {}
    while handled < limit:
        # After a delivery the follower's next message is usually due: go
        # straight to the locked claim, skip the unlocked look.
        message = claim_next(contact_id=contact_id, worker=worker, look_first=handled == 0)
        if message is None:
            break
        if message.account_id not in accounts:
            accounts[message.account_id] = OfficialAccount.objects.get(pk=message.account_id)
        message.account = accounts[message.account_id]
        deliver(message, worker=worker)
        handled += 1
    return handled


def _backlog_state(contact_id, now):
    """(a due message is queued, a message is in flight) for one follower, in one round trip.

    Written as SQL: this runs several times per send and the ORM's query
    compilation cost more CPU than the rest of a claim.
    """
    table = connection.ops.quote_name(OutboundMessage._meta.db_table)
    contact_table = connection.ops.quote_name(Contact._meta.db_table)
    # Only quoted table names are interpolated; every value is a parameter.
    sql = "".join(
        (
            f"SELECT EXISTS(SELECT 1 FROM {table} WHERE contact_id = %s AND status = %s AND send_at <= %s), ",  # noqa: S608
            f"EXISTS(SELECT 1 FROM {table} WHERE contact_id = %s AND status = %s) ",  # noqa: S608
            f"FROM {contact_table} WHERE id = %s",
        )
    )
    send_at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [contact_id, S.QUEUED, send_at, contact_id, S.SENDING, contact_id])
        row = cursor.fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def _lock_contact(contact_id):
    """Take the follower's row lock (PostgreSQL; SQLite's IMMEDIATE transaction already serializes)."""
    if connection.features.has_select_for_update:
        table = connection.ops.quote_name(Contact._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [contact_id])  # noqa: S608


def claim_next(*, contact_id, worker, now=None, look_first=True):
    """Claim the contact's oldest due queued message (queued → sending), or None.

    Under the Contact row lock the check "nothing in flight" and the update
    form one step: every move into `sending` happens here, under that lock,
    so two workers (or a duplicate task) can never have two messages of one
    follower in flight — or claim the same message twice.
    """
    now = now or timezone.now()
    # Most delivery tasks find nothing to do (each queued message brings one,
    # and the first delivers the follower's whole backlog): answer those
    # without taking a lock — on SQLite that lock is the database's.
    if look_first:
        waiting, in_flight = _backlog_state(contact_id, now)
        if not waiting or in_flight:
            return None
    lease_until = now + timedelta(seconds=lease_seconds())
    with transaction.atomic():
        # Lock first, then look, in two statements: under READ COMMITTED a
        # SELECT … FOR UPDATE that waited for the lock still evaluates its
        # other expressions with the snapshot taken before the wait, so a
        # worker queued behind another's claim would not see that claim's
        # `sending` row and could send the next message out of order. The
        # look is the claiming UPDATE itself, a statement of its own after
        # the lock: a fresh snapshot.
        _lock_contact(contact_id)
        message = _claim_head(contact_id, worker, now, lease_until)
        if message is None:
            return None
        live.record(
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            kind="outbound_status",
            data=_event_data(message),
        )
    return message


def _claim_head(contact_id, worker, now, lease_until):
    """queued → sending for the follower's oldest due message, in one statement; the claimed row or None.

    Nothing is claimed when another message of the follower is in flight, or
    when the oldest due one waits for its retry time (the ones behind it wait
    too). Run it under the Contact lock (`_lock_contact`).
    """
    table = connection.ops.quote_name(OutboundMessage._meta.db_table)
    # Only the quoted table name is interpolated; every value is a parameter.
    sql = "".join(
        (
            f"UPDATE {table} SET status = %s, worker = %s, claimed_at = %s, lease_expires_at = %s, ",  # noqa: S608
            "attempts = attempts + 1, next_attempt_at = NULL ",
            f"WHERE id = (SELECT id FROM {table} WHERE contact_id = %s AND status = %s AND send_at <= %s ",  # noqa: S608
            "ORDER BY send_at, id LIMIT 1) ",
            "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) ",
            f"AND NOT EXISTS (SELECT 1 FROM {table} WHERE contact_id = %s AND status = %s) ",  # noqa: S608
            "RETURNING *",
        )
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [S.SENDING, worker, adapt(now), adapt(lease_until), contact_id, S.QUEUED, adapt(now), adapt(now)]
    params += [contact_id, S.SENDING]
    claimed = list(OutboundMessage.objects.raw(sql, params))
    return claimed[0] if claimed else None


def deliver(message, *, worker):
    """Send one claimed message and settle its status. Never raises for a WeChat answer."""
    try:
        body = builders.serialize(builders.canonical(message.payload))
        client.send_custom(message.account, body, outbound_id=message.pk, attempt=message.attempts)
    except builders.BuildError as exc:
        return _settle(message, worker, S.FAILED, reason=str(exc))
    except errors.WeChatError as exc:
        return _settle_error(message, worker, exc)
    except Exception:
        # A bug or a database failure between claim and answer: we cannot
        # tell whether the request left, so it must not be repeated (§10.2).
        log.exception("delivery of outbound %s broke off", message.pk)
        return _settle(message, worker, S.UNKNOWN, reason=errors.AMBIGUOUS_TEXT)
    return _settle(message, worker, S.SENT)


def _settle_error(message, worker, exc):
    fields = {"errcode": exc.errcode, "errmsg": exc.errmsg, "rid": exc.rid}
    outage = not isinstance(exc, errors.APIError)
    limit, backoff = (OUTAGE_MAX_ATTEMPTS, OUTAGE_BACKOFF_SECONDS) if outage else (MAX_ATTEMPTS, BACKOFF_SECONDS)
    if exc.retry and message.attempts < limit:
        step = backoff[min(message.attempts, len(backoff)) - 1]
        delay = RATE_LIMIT_BACKOFF_SECONDS if exc.errcode == 45011 else step
        retry_at = timezone.now() + timedelta(seconds=delay)
        return _settle(
            message, worker, S.QUEUED, reason=f"{exc}（第 {message.attempts} 次）", retry_at=retry_at, **fields
        )
    if isinstance(exc, errors.Ambiguous):
        return _settle(message, worker, S.UNKNOWN, reason=str(exc), **fields)
    reason = str(exc)
    if exc.retry:
        reason = f"已尝试 {message.attempts} 次仍失败：{exc}"
    return _settle(message, worker, S.FAILED, reason=reason, **fields)


SETTLE_TRIES = 5


def _settle(message, worker, status, **outcome):
    """Record an outcome, retrying the write on a passing database error.

    The answer is already in hand: losing it to a deadlock or a dropped
    connection would leave the row `sending` until the sweeper calls it
    unknown — and a sent message would look possibly unsent.
    """
    for attempt in range(1, SETTLE_TRIES + 1):
        try:
            return _settle_once(message, worker, status, **outcome)
        except OperationalError:
            if attempt == SETTLE_TRIES:
                raise
            log.warning("recording outbound %s as %s failed (try %s); retrying", message.pk, status, attempt)
            close_old_connections()
            time.sleep(0.2 * attempt)
    return False


def _settle_once(message, worker, status, *, reason="", errcode=None, errmsg="", rid="", retry_at=None):
    """Move a claimed message to its outcome, with its window effects, in one transaction."""
    now = timezone.now()
    update = {
        "status": status,
        "reason": reason[:255],
        "lease_expires_at": None,
        "last_errcode": errcode,
        "last_errmsg": (errmsg or "")[:512],
    }
    if rid:
        update["rid"] = rid
    if status == S.SENT:
        update["sent_at"] = now
    if status == S.QUEUED:
        update.update(next_attempt_at=retry_at, worker="")
    # The Contact row is only touched when the window changes: a failure
    # gives the unit back, and 45015 / 43004 / 45047 close or exhaust it.
    touches_window = status == S.FAILED or errcode in (errors.WINDOW_CLOSED, errors.NOT_SUBSCRIBED, errors.QUOTA_USED)
    touches_conversation = status == S.SENT and message.conversation_id and message.send_at > message.created_at
    previous = message.status
    if connection.vendor == "postgresql" and not (touches_window or touches_conversation):
        settled = _settle_in_one_statement(message, worker, update)
    else:
        settled = _settle_in_a_transaction(message, worker, update, touches_window, touches_conversation, now)
    if not settled:
        log.warning("outbound %s was settled by someone else; answer %s not recorded", message.pk, status)
        return False
    if status == S.QUEUED:
        contact_id = message.contact_id
        transaction.on_commit(lambda: _enqueue_delivery(contact_id, retry_at))
    log.info(
        "outbound %s %s → %s%s", message.pk, previous, status, f" (errcode {errcode})" if errcode is not None else ""
    )
    return True


def _settle_in_a_transaction(message, worker, update, touches_window, touches_conversation, now):
    status, errcode = update["status"], update["last_errcode"]
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=message.contact_id) if touches_window else None
        # Only the claimer settles. A row the sweeper already called unknown
        # may still learn its real outcome from a late answer.
        if not _settle_row(message.pk, worker, update):
            return False
        for name, value in update.items():
            setattr(message, name, value)
        if status == S.FAILED:
            _release_quota(contact, message)
        if touches_window:
            _apply_window_verdict(contact, errcode, now)
        if touches_conversation:
            _touch_conversation(message.conversation_id, message.preview, now)
        live.record(
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            kind="outbound_status",
            data=_event_data(message),
        )
    return True


def _settle_in_one_statement(message, worker, update):
    """PostgreSQL, the usual outcome (no window or conversation change): the claimer-only UPDATE
    and its LiveUpdate in one statement — atomic on its own, no transaction around it.

    The LiveUpdate is inserted once per row the UPDATE changed, so none when
    someone else settled the message.
    """
    changes = {"status": update["status"], "reason": update["reason"], "errcode": update["last_errcode"]}
    entry = live.new(
        account_id=message.account_id,
        conversation_id=message.conversation_id,
        kind="outbound_status",
        data={**_event_data(message), **changes},
    )
    settle_sql, settle_params = _settle_statement(message.pk, worker, update)
    insert_sql, insert_params = rawsql.insert_statement(entry, source="settled")
    with connection.cursor() as cursor:
        cursor.execute(f"WITH settled AS ({settle_sql} RETURNING 1) {insert_sql}", [*settle_params, *insert_params])
        row = cursor.fetchone()
    if row is None:
        return False
    rawsql.saved(entry, row[0])
    live.announce(entry)
    for name, value in update.items():
        setattr(message, name, value)
    return True


def _settle_row(pk, worker, values):
    """UPDATE the claimed row to its outcome, if `worker` still holds it (sending, or unknown by the sweeper)."""
    sql, params = _settle_statement(pk, worker, values)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _settle_statement(pk, worker, values):
    sql, params = rawsql.update_statement(OutboundMessage, pk, values)
    # update_statement ends with "WHERE id = %s": the claimer's conditions follow.
    return f"{sql} AND worker = %s AND status IN (%s, %s)", [*params, worker, S.SENDING, S.UNKNOWN]


def _apply_window_verdict(contact, errcode, now):
    """WeChat's word on the window beats ours (§3.2)."""
    state = contact.window_state()
    fields = list(Contact.WINDOW_FIELDS)
    if errcode == errors.WINDOW_CLOSED:
        state = window.close(state)
    elif errcode == errors.NOT_SUBSCRIBED:
        state = window.close(state, unsubscribed=True)
        contact.unsubscribed_at = contact.unsubscribed_at or now
        fields.append("unsubscribed_at")
    elif errcode == errors.QUOTA_USED:
        state = window.exhaust(state, now)
    else:
        return
    contact.set_window_state(state)
    contact.save(update_fields=fields)


def _release_quota(contact, message):
    if not message.grant_kind:
        return
    state = window.release(contact.window_state(), slot=message.grant_kind, opened_at=message.grant_opened_at)
    contact.set_window_state(state)
    contact.save(update_fields=Contact.WINDOW_FIELDS)


# --- sweeper --------------------------------------------------------------------


def sweep(*, now=None, batch=200):
    """Leases that ran out become `unknown`; due queued messages whose task was lost get a new one.

    Returns (expired, re-enqueued contacts).
    """
    now = now or timezone.now()
    expired = 0
    stale = OutboundMessage.objects.filter(status=S.SENDING, lease_expires_at__lt=now).values_list("pk", flat=True)
    for pk in list(stale[:batch]):
        with transaction.atomic():
            changed = OutboundMessage.objects.filter(pk=pk, status=S.SENDING, lease_expires_at__lt=now).update(
                status=S.UNKNOWN, reason=errors.LEASE_EXPIRED_TEXT, lease_expires_at=None
            )
            if changed:
                message = OutboundMessage.objects.get(pk=pk)
                live.record(
                    account_id=message.account_id,
                    conversation_id=message.conversation_id,
                    kind="outbound_status",
                    data=_event_data(message),
                )
                expired += 1
                log.warning("outbound %s: worker %s lost its lease; status unknown", pk, message.worker)
                # Messages queued behind it for the same follower may go now.
                transaction.on_commit(lambda cid=message.contact_id: _enqueue_delivery(cid, None))
    # A follower with a message in flight has a task at work on the backlog
    # (or, if its worker died, gets one when the lease above runs out).
    in_flight = OutboundMessage.objects.filter(status=S.SENDING).values("contact_id")
    overdue = (
        OutboundMessage.objects.filter(status=S.QUEUED, send_at__lte=now - SWEEP_GRACE)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - SWEEP_GRACE))
        .exclude(contact_id__in=in_flight)
        .values_list("contact_id", flat=True)
        .distinct()
    )
    contacts = sorted(set(overdue[:batch]))
    pending = _deliveries_pending(contacts)
    requeued = 0
    for contact_id in contacts:
        if contact_id in pending:
            continue
        _enqueue_delivery(contact_id, None)
        requeued += 1
    if requeued:
        log.info("sweeper re-enqueued delivery for %s contact(s)", requeued)
    return expired, requeued


def _deliveries_pending(contact_ids):
    """Of these contacts, those with a delivery task waiting to run, in one query.

    (A RUNNING task may belong to a dead worker: it does not count.)
    """
    if not contact_ids:
        return set()
    try:
        from django_tasks_db.models import DBTaskResult

        from wechat import tasks

        waiting = DBTaskResult.objects.filter(
            status="READY", task_path=tasks.deliver.module_path, args_kwargs__kwargs__contact_id__in=contact_ids
        ).values_list("args_kwargs__kwargs__contact_id", flat=True)
        return {int(c) for c in waiting if c is not None}
    except Exception:  # another task backend: a duplicate task is harmless anyway
        return set()


# --- helpers --------------------------------------------------------------------


def _enqueue_delivery(contact_id, run_after):
    from wechat import tasks

    try:
        tasks.enqueue_delivery(contact_id, run_after=run_after)
    except Exception:
        # The row is committed; the sweeper will find it.
        log.warning("could not enqueue delivery for contact %s", contact_id, exc_info=True)


def _enqueue_typing(contact_id):
    from wechat import tasks

    try:
        tasks.send_typing_task.enqueue(contact_id=contact_id)
    except Exception:
        log.warning("could not enqueue typing for contact %s", contact_id, exc_info=True)


def _live_conversation(contact_id):
    return (
        Conversation.objects.filter(contact_id=contact_id)
        .exclude(status=Conversation.Status.RESOLVED)
        .order_by("-id")
        .first()
    )


def _touch_conversation(conversation_id, preview, now):
    Conversation.objects.filter(pk=conversation_id).update(
        last_message_at=now,
        last_message_preview=preview[:140],
        last_message_direction="out",
        waiting_since=None,
        first_response_at=Coalesce(F("first_response_at"), Value(now)),
    )


def _event_data(message):
    return {
        "message": message.pk,
        "contact": message.contact_id,
        "status": message.status,
        "msgtype": message.msgtype,
        "preview": message.preview,
        "send_at": message.send_at.isoformat() if message.send_at else None,
        "attempts": message.attempts,
        "reason": message.reason,
        "errcode": message.last_errcode,
    }
