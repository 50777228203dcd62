"""The agents' websocket: live updates, catch-up, presence. Thin on purpose.

Authenticate on connect (anonymous sockets are closed before the handshake
completes), join the account groups the user may see, route each client
message by its `type` and delegate to services. The database is the truth:
a live event is a hint; the page catches up from the last LiveUpdate id it saw.

The consumer is async because of the fan-out: every live event is delivered
to every connected agent of its account, and a sync consumer paid a hop into
a worker thread (and `close_old_connections`) per delivery — 50 agents at
100 msg/s were 5,000 hops a second and saturated the server
(docs/benchmarks.md §2). Delivering a live event (`live_update`) needs no
database and stays on the event loop; only client requests that read or
write the database (catch-up, watch, heartbeat, typing, leaving) go through
`database_sync_to_async`, to the same services as before.
"""

import asyncio
import contextlib
import functools
import json
import logging
from collections import OrderedDict

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from config.logging import clean_request_id, request_id_var
from inbox import access, presence, services
from wechat import live
from wechat.consumers import scope_header
from wechat.models import Conversation

log = logging.getLogger(__name__)

# Close codes in the private range (4000–4999): the page shows why and does
# not reconnect to a refusal.
UNAUTHENTICATED = 4401
CATCH_UP_LIMIT = 500

# Channel-layer events whose handlers never touch the database.
_NO_DATABASE = frozenset({live.EVENT_TYPE, presence.EVENT_TYPE})


class InboxConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        # AsyncConsumer.__call__, with a cheaper loop than channels'
        # await_many_dispatch (see _dispatch_in_order). A layer is required:
        # the socket exists to hear live events.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await _dispatch_in_order([receive, self.channel_receive], self.dispatch)

    async def dispatch(self, message):
        # Channels' dispatch hops to a thread for `close_old_connections`
        # before every handler, even in an async consumer: per delivery, the
        # very cost this consumer exists to avoid. Events that need no
        # database skip it; everything else goes the usual way (and every
        # database call here is a database_sync_to_async, which closes old
        # connections in the thread that uses them).
        if message.get("type") in _NO_DATABASE:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        # One id for the socket's whole life: every line it logs carries it
        # (this consumer's task, and the threads its database calls run on).
        request_id_var.set(clean_request_id(scope_header(self.scope, b"x-request-id")))
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            log.info("websocket refused %s: not logged in", UNAUTHENTICATED)
            await self.close(code=UNAUTHENTICATED)
            return
        self.user = user
        self.account_ids = set(await database_sync_to_async(access.visible_account_ids)(user))
        self.watching = None
        for account_id in self.account_ids:
            await self.channel_layer.group_add(live.account_group(account_id), self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.pk, "accounts": sorted(self.account_ids)})

    async def disconnect(self, code):
        if not hasattr(self, "user"):
            return
        await self._unwatch()
        for account_id in self.account_ids:
            await self.channel_layer.group_discard(live.account_group(account_id), self.channel_name)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        handler = {
            "catch_up": self.catch_up,
            "watch": self.watch,
            "unwatch": self.unwatch,
            "heartbeat": self.heartbeat,
            "typing": self.typing,
            "stop_typing": self.stop_typing,
        }.get(kind)
        if handler is None:
            await self.send_json({"type": "error", "error": "unknown message type"})
            return
        await handler(content)

    # --- client → server -------------------------------------------------

    async def catch_up(self, content):
        try:
            after = int(content.get("after", 0))
        except (TypeError, ValueError):
            after = 0
        updates = await database_sync_to_async(_updates_after)(after, self.account_ids)
        await self.send_json(
            {"type": "caught_up", "updates": [_public(u) for u in updates], "more": len(updates) == CATCH_UP_LIMIT}
        )

    async def watch(self, content):
        conversation_id = await database_sync_to_async(_visible_conversation_id)(content, self.account_ids)
        if conversation_id is None:
            await self.send_json({"type": "refused", "what": "watch", "conversation": content.get("conversation")})
            return
        if self.watching != conversation_id:
            await self._unwatch()
            self.watching = conversation_id
            await self.channel_layer.group_add(live.conversation_group(conversation_id), self.channel_name)
        await database_sync_to_async(presence.arrive)(
            user=self.user, conversation_id=conversation_id, channel_name=self.channel_name
        )

    async def unwatch(self, content):
        await self._unwatch()

    async def heartbeat(self, content):
        if self.watching is not None:
            await database_sync_to_async(presence.heartbeat)(
                user=self.user, conversation_id=self.watching, channel_name=self.channel_name
            )
        await self.send_json({"type": "pong"})

    async def typing(self, content):
        if self.watching is None:
            return
        await database_sync_to_async(_typing)(self.user, self.watching, self.channel_name)

    async def stop_typing(self, content):
        if self.watching is not None:
            await database_sync_to_async(presence.stop_typing)(
                conversation_id=self.watching, channel_name=self.channel_name
            )

    async def _unwatch(self):
        if getattr(self, "watching", None) is None:
            return
        conversation_id, self.watching = self.watching, None
        await self.channel_layer.group_discard(live.conversation_group(conversation_id), self.channel_name)
        await database_sync_to_async(presence.leave)(conversation_id=conversation_id, channel_name=self.channel_name)

    # --- channel layer → client ------------------------------------------
    # On the event loop, no database: the event carries what the page shows.

    async def live_update(self, event):
        # Groups are per account, but check anyway: a membership revoked
        # while connected must not keep leaking.
        if event.get("account") in self.account_ids:
            await self.send(text_data=_live_text(event))

    async def presence_update(self, event):
        if event.get("conversation") == self.watching:
            await self.send_json(
                {"type": "presence", "conversation": event["conversation"], "viewers": event["viewers"]}
            )


# --- database work, run in a thread by database_sync_to_async ---------------


def _updates_after(after, account_ids):
    return [live.as_event(u) for u in live.updates_after(after, account_ids=account_ids, limit=CATCH_UP_LIMIT)]


def _visible_conversation_id(content, account_ids):
    """The id of the conversation `content` names, when it is in one of `account_ids`; else None."""
    try:
        conversation_id = int(content.get("conversation"))
    except (TypeError, ValueError):
        return None
    account_id = Conversation.objects.filter(pk=conversation_id).values_list("account_id", flat=True).first()
    if account_id is None or account_id not in account_ids:
        return None
    return conversation_id


def _typing(user, conversation_id, channel_name):
    presence.typing(user=user, conversation_id=conversation_id, channel_name=channel_name)
    conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
    try:
        services.notify_typing(conversation=conversation, agent=user)
    except Exception:  # a typing hint must never break the socket
        log.warning("typing notification for conversation %s failed", conversation.pk, exc_info=True)


# --- the message a browser gets ------------------------------------------------


def _public(event):
    return {
        "type": "live",
        "id": event["id"],
        "kind": event["kind"],
        "account": event["account"],
        "conversation": event["conversation"],
        "data": event.get("data") or {},
    }


# Every agent of an account gets the same text for an event: encode it once
# per process, not once per socket. The channel layer hands each socket its
# own copy of the event, so a hit is checked for equality (far cheaper than
# encoding) — an id alone could name different rows across test databases.
_ENCODED_KEEP = 256
_encoded = OrderedDict()


def _live_text(event):
    key = event.get("id")
    hit = _encoded.get(key)
    if hit is not None and hit[0] == event:
        return hit[1]
    text = json.dumps(_public(event))
    _encoded[key] = (event, text)
    if len(_encoded) > _ENCODED_KEEP:
        _encoded.popitem(last=False)
    return text


# --- plumbing ------------------------------------------------------------------


async def _dispatch_in_order(sources, dispatch):
    """Handle every message of every source, one at a time, in arrival order.

    What channels.utils.await_many_dispatch does, without its new task and
    `asyncio.wait` per message: measured at ~40 µs a message on the bench
    machine, per delivery — as much as the rest of a delivery. Here one
    long-lived task per source feeds a queue.
    """
    arrived = asyncio.Queue()

    async def pump(source):
        try:
            while True:
                arrived.put_nowait((await source(), None))
        except Exception as error:  # the loop raises it, as await_many_dispatch would
            arrived.put_nowait((None, error))

    pumps = [asyncio.ensure_future(pump(source)) for source in sources]
    try:
        while True:
            message, error = await arrived.get()
            if error is not None:
                raise error
            await dispatch(message)
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
