"""The agents' websocket: live updates, catch-up, presence. Thin on purpose.

Authenticate on connect (anonymous sockets are closed before the handshake
completes), join the account groups the user may see, route each client
message by its `type` and delegate to services. The database is the truth:
a live event is a hint; the page catches up from the last LiveUpdate id it saw.
"""

import logging

from asgiref.sync import async_to_sync
from channels.generic.websocket import JsonWebsocketConsumer

from inbox import access, presence, services
from wechat import live
from wechat.models import Conversation

log = logging.getLogger(__name__)

# Close codes in the private range (4000–4999): the page shows why and does
# not reconnect to a refusal.
UNAUTHENTICATED = 4401


class InboxConsumer(JsonWebsocketConsumer):
    def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            self.close(code=UNAUTHENTICATED)
            return
        self.user = user
        self.account_ids = set(access.visible_account_ids(user))
        self.watching = None
        for account_id in self.account_ids:
            async_to_sync(self.channel_layer.group_add)(live.account_group(account_id), self.channel_name)
        self.accept()
        self.send_json({"type": "hello", "user": user.pk, "accounts": sorted(self.account_ids)})

    def disconnect(self, code):
        if not hasattr(self, "user"):
            return
        self._unwatch()
        for account_id in self.account_ids:
            async_to_sync(self.channel_layer.group_discard)(live.account_group(account_id), self.channel_name)

    def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        handler = {
            "catch_up": self.catch_up,
            "watch": self.watch,
            "unwatch": lambda _content: self._unwatch(),
            "heartbeat": self.heartbeat,
            "typing": self.typing,
            "stop_typing": self.stop_typing,
        }.get(kind)
        if handler is None:
            self.send_json({"type": "error", "error": "unknown message type"})
            return
        handler(content)

    # --- client → server -------------------------------------------------

    def catch_up(self, content):
        try:
            after = int(content.get("after", 0))
        except (TypeError, ValueError):
            after = 0
        updates = live.updates_after(after, account_ids=self.account_ids, limit=500)
        self.send_json(
            {
                "type": "caught_up",
                "updates": [_public(live.as_event(u)) for u in updates],
                "more": len(updates) == 500,
            }
        )

    def watch(self, content):
        conversation = self._conversation(content)
        if conversation is None:
            self.send_json({"type": "refused", "what": "watch", "conversation": content.get("conversation")})
            return
        if self.watching != conversation.pk:
            self._unwatch()
            self.watching = conversation.pk
            async_to_sync(self.channel_layer.group_add)(live.conversation_group(conversation.pk), self.channel_name)
        presence.arrive(user=self.user, conversation_id=conversation.pk, channel_name=self.channel_name)

    def heartbeat(self, content):
        if self.watching is not None:
            presence.heartbeat(user=self.user, conversation_id=self.watching, channel_name=self.channel_name)
        self.send_json({"type": "pong"})

    def typing(self, content):
        if self.watching is None:
            return
        presence.typing(user=self.user, conversation_id=self.watching, channel_name=self.channel_name)
        conversation = Conversation.objects.select_related("contact").get(pk=self.watching)
        try:
            services.notify_typing(conversation=conversation, agent=self.user)
        except Exception:  # a typing hint must never break the socket
            log.warning("typing notification for conversation %s failed", conversation.pk, exc_info=True)

    def stop_typing(self, content):
        if self.watching is not None:
            presence.stop_typing(conversation_id=self.watching, channel_name=self.channel_name)

    def _unwatch(self):
        if getattr(self, "watching", None) is None:
            return
        conversation_id, self.watching = self.watching, None
        async_to_sync(self.channel_layer.group_discard)(live.conversation_group(conversation_id), self.channel_name)
        presence.leave(conversation_id=conversation_id, channel_name=self.channel_name)

    def _conversation(self, content):
        try:
            conversation_id = int(content.get("conversation"))
        except (TypeError, ValueError):
            return None
        conversation = Conversation.objects.filter(pk=conversation_id).first()
        if conversation is None or conversation.account_id not in self.account_ids:
            return None
        return conversation

    # --- channel layer → client ------------------------------------------

    def live_update(self, event):
        # Groups are per account, but check anyway: a membership revoked
        # while connected must not keep leaking.
        if event.get("account") in self.account_ids:
            self.send_json(_public(event))

    def presence_update(self, event):
        if event.get("conversation") == self.watching:
            self.send_json({"type": "presence", "conversation": event["conversation"], "viewers": event["viewers"]})


def _public(event):
    return {
        "type": "live",
        "id": event["id"],
        "kind": event["kind"],
        "account": event["account"],
        "conversation": event["conversation"],
        "data": event.get("data") or {},
    }
