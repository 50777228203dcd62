"""Write, then push: the one place that tells browsers what changed.

Service functions call `record(...)` inside their transaction. The LiveUpdate
row commits with the change it describes; the channel-layer message goes out in
`transaction.on_commit`, so no browser hears of a row that was rolled back. The
channel layer is at-most-once: browsers catch up from the last LiveUpdate id
they saw (`updates_after`). Group names and event shapes live only here.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from wechat.models import LiveUpdate

log = logging.getLogger(__name__)

# Event type handled by the inbox consumers (`live_update` method).
EVENT_TYPE = "live.update"


def account_group(account_id):
    return f"account.{account_id}"


def conversation_group(conversation_id):
    return f"conversation.{conversation_id}"


def user_group(user_id):
    return f"user.{user_id}"


def record(*, account_id, kind, conversation_id=None, data=None):
    """Append a LiveUpdate and publish it after commit. Call inside the writing transaction."""
    update = LiveUpdate.objects.create(
        account_id=account_id, conversation_id=conversation_id, kind=kind, data=data or {}
    )
    message = as_event(update)
    transaction.on_commit(lambda: publish(account_group(account_id), message))
    return update


def as_event(update):
    return {
        "type": EVENT_TYPE,
        "id": update.id,
        "kind": update.kind,
        "account": update.account_id,
        "conversation": update.conversation_id,
        "data": update.data,
    }


def publish(group, message):
    """Best effort: a lost event is recovered by the browser's catch-up."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # the database already has the truth
        log.warning("live update %s to %s not published", message.get("id"), group, exc_info=True)


def updates_after(last_id, *, account_ids=None, limit=500):
    qs = LiveUpdate.objects.filter(id__gt=last_id).order_by("id")
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    return list(qs[:limit])
