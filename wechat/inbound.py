"""Store one push: the follower, the inbound row, the reply window, the conversation.

`receive` is the only writer for inbound traffic. Everything happens in one
transaction so that the window a send is later gated on always matches the
rows that opened it; agents are told after commit (wechat.live).
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from wechat import live, window
from wechat.models import Contact, Conversation, InboundMessage, OfficialAccount

log = logging.getLogger(__name__)

MEDIA_TYPES = frozenset({"image", "voice", "video", "shortvideo"})
# Pushes that start (or reopen) a conversation: anything that opens a window.
_STARTS_CONVERSATION = {window.LONG, window.SHORT}


@dataclass(frozen=True)
class Received:
    message: InboundMessage | None
    duplicate: bool


def receive(*, account, push, raw_xml="", now=None):
    """Store `push` for `account` exactly once. Returns Received(message, duplicate)."""
    now = now or timezone.now()
    with transaction.atomic():
        # One query in the common case: the follower's live conversation with
        # its contact. Only a first push (or one after a resolve) needs more.
        conversation = _live_conversation(account, push.from_user)
        contact = conversation.contact if conversation else _contact_for(account, push.from_user, now)
        message = _insert(account, contact, conversation, push, raw_xml, now)
        if message is None:
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
        _update_contact(contact, push, now)
        if conversation is None:
            conversation = _start_conversation(account, contact, push, now)
            if conversation is not None:
                message.conversation = conversation
                InboundMessage.objects.filter(pk=message.pk).update(conversation=conversation)
        if conversation is not None:
            _touch_conversation(conversation, message, now)
        live.record(
            account_id=account.pk,
            conversation_id=conversation.pk if conversation else None,
            kind="inbound",
            data={"message": message.pk, "contact": contact.pk, "preview": message.content[:140]},
        )
        if message.media_status == InboundMessage.MediaStatus.PENDING:
            transaction.on_commit(lambda: _enqueue_media_fetch(message.pk))
    return Received(message, False)


def _contact_for(account, openid, now):
    contact = Contact.objects.filter(account=account, openid=openid).first()
    if contact is not None:
        return contact
    try:
        with transaction.atomic():
            return Contact.objects.create(account=account, openid=openid, first_seen_at=now)
    except IntegrityError:
        # A concurrent push from the same new follower created it first.
        return Contact.objects.get(account=account, openid=openid)


def _live_conversation(account, openid):
    return (
        Conversation.objects.select_related("contact")
        .filter(contact__account=account, contact__openid=openid)
        .exclude(status=Conversation.Status.RESOLVED)
        .order_by("-id")
        .first()
    )


def _insert(account, contact, conversation, push, raw_xml, now):
    media_id = getattr(push, "media_id", "") or ""
    pending = push.msg_type in MEDIA_TYPES and bool(media_id)
    try:
        # The savepoint keeps the outer transaction usable after a duplicate.
        with transaction.atomic():
            return InboundMessage.objects.create(
                account=account,
                contact=contact,
                conversation=conversation,
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
    except IntegrityError:
        return None


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _update_contact(contact, push, now):
    # The window runs from when WeChat says the follower acted, not from when
    # a retried push finally reached us; never from the future.
    acted_at = min(push.sent_at, now)
    state = window.apply_action(contact.window_state(), msg_type=push.msg_type, event=push.event, at=acted_at)
    contact.set_window_state(state)
    fields = list(Contact.WINDOW_FIELDS)
    if push.event == "subscribe":
        contact.subscribed_at = acted_at
        fields.append("subscribed_at")
    elif push.event == "unsubscribe":
        contact.unsubscribed_at = acted_at
        fields.append("unsubscribed_at")
    contact.last_inbound_at = acted_at
    fields.append("last_inbound_at")
    contact.save(update_fields=fields)


def _start_conversation(account, contact, push, now):
    if window.classify(push.msg_type, push.event) not in _STARTS_CONVERSATION:
        return None
    try:
        with transaction.atomic():
            return Conversation.objects.create(account=account, contact=contact, last_message_at=now)
    except IntegrityError:
        return Conversation.objects.exclude(status=Conversation.Status.RESOLVED).get(contact=contact)


def _touch_conversation(conversation, message, now):
    conversation.last_message_at = now
    conversation.last_message_preview = message.content[:140]
    conversation.last_message_direction = "in"
    fields = ["last_message_at", "last_message_preview", "last_message_direction"]
    opens_window = window.classify(message.msg_type, message.event) in _STARTS_CONVERSATION
    # A message or a menu click asks for an answer; a bare follow does not.
    if opens_window and message.event != "subscribe":
        if conversation.waiting_since is None:
            conversation.waiting_since = now
            fields.append("waiting_since")
        if conversation.first_inbound_at is None:
            conversation.first_inbound_at = now
            fields.append("first_inbound_at")
    if conversation.status in (Conversation.Status.SNOOZED, Conversation.Status.PENDING) and (
        message.msg_type in window.MESSAGE_TYPES
    ):
        # A follower writing again wakes a snoozed or pending conversation.
        conversation.status = Conversation.Status.OPEN
        conversation.snoozed_until = None
        fields += ["status", "snoozed_until"]
    conversation.save(update_fields=fields)


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
