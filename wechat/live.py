"""Write, then push: the one place that tells browsers what changed.

Service functions call `record(...)` inside their transaction. The LiveUpdate
row commits with the change it describes; the channel-layer message goes out in
`transaction.on_commit`, so no browser hears of a row that was rolled back. The
channel layer is at-most-once: browsers catch up from the last LiveUpdate id
they saw (`updates_after`). Group names and event shapes live only here.
"""

import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from wechat import rawsql
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
    update = new(account_id=account_id, kind=kind, conversation_id=conversation_id, data=data)
    rawsql.insert(update)  # every write path records one of these: no ORM compile per event
    announce(update)
    return update


def new(*, account_id, kind, conversation_id=None, data=None):
    """An unsaved LiveUpdate, for a caller that stores it in a statement of its own (then `announce`)."""
    return LiveUpdate(account_id=account_id, conversation_id=conversation_id, kind=kind, data=data or {})


def announce(update):
    """Publish a stored LiveUpdate once the transaction that stored it commits."""
    message = as_event(update)
    transaction.on_commit(lambda: publish(account_group(update.account_id), message))


def as_event(update):
    return {
        "type": EVENT_TYPE,
        "id": update.id,
        "kind": update.kind,
        "account": update.account_id,
        "conversation": update.conversation_id,
        "data": update.data,
    }


# A network channel layer (Redis) is published to from one long-lived loop
# thread per process, fire and forget: async_to_sync outside a server starts a
# new thread, loop and Redis connection per call, and inside uvicorn it makes
# the writing thread wait on the event loop for a round trip it does not need
# (it was a third of a webhook push). The in-memory layer's queues belong to
# the server's own loop, so it keeps async_to_sync.
_publisher_loop = None
_publisher_guard = threading.Lock()


def start_background_publisher():
    """Publish from a dedicated loop thread from now on (call once at process start)."""
    global _publisher_loop
    with _publisher_guard:
        if _publisher_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher_loop = loop
    return _publisher_loop


def publish(group, message):
    """Best effort: a lost event is recovered by the browser's catch-up."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        loop = _publisher_loop
        if loop is None and not isinstance(layer, InMemoryChannelLayer):
            loop = start_background_publisher()
        if loop is not None:
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
            future.add_done_callback(lambda f: _report(f, group, message))
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # the database already has the truth
        log.warning("live update %s to %s not published", message.get("id"), group, exc_info=True)


def _report(future, group, message):
    if future.exception() is not None:
        log.warning("live update %s to %s not published: %r", message.get("id"), group, future.exception())


def updates_after(last_id, *, account_ids=None, limit=500):
    qs = LiveUpdate.objects.filter(id__gt=last_id).order_by("id")
    if account_ids is not None:
        qs = qs.filter(account_id__in=account_ids)
    return list(qs[:limit])
