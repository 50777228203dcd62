""" "X is viewing" / "X is typing": ephemeral, so two agents never answer the same follower unknowingly.

Presence is not history, so it is not a LiveUpdate: it lives in short-lived
`inbox.Presence` rows (one per socket and conversation, expiring on their own
when a browser vanishes without a goodbye) and travels on the channel-layer
group of the conversation (`wechat.live.conversation_group`). A socket that
joins the group gets the current list at once; later changes are pushed.
"""

from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import access
from inbox.models import Presence
from wechat import live

# The browser sends a heartbeat every 20 s; a row outlives two missed beats.
VIEWING_TTL = timedelta(seconds=45)
# Shorter than WeChat's 15 s typing state (§4): this is for colleagues, and a
# stale "is typing" is worse than a flicker.
TYPING_TTL = timedelta(seconds=6)

EVENT_TYPE = "presence.update"


def _now(now=None):
    return now or timezone.now()


def viewers(conversation_id, *, now=None):
    """[{"user", "name", "typing"}] of people with the conversation open now, one entry per user."""
    now = _now(now)
    rows = (
        Presence.objects.filter(conversation_id=conversation_id, viewing_until__gt=now)
        .select_related("user")
        .order_by("id")
    )
    people = {}
    for row in rows:
        typing = row.typing_until is not None and row.typing_until > now
        entry = people.setdefault(
            row.user_id, {"user": row.user_id, "name": access.display_name(row.user), "typing": False}
        )
        entry["typing"] = entry["typing"] or typing
    return list(people.values())


def as_event(conversation_id, *, now=None):
    return {"type": EVENT_TYPE, "conversation": conversation_id, "viewers": viewers(conversation_id, now=now)}


def _broadcast(conversation_id):
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(live.conversation_group(conversation_id), as_event(conversation_id))


def _upsert(*, user, conversation_id, channel_name, now, typing):
    values = {"user": user, "viewing_until": now + VIEWING_TTL}
    if typing:
        values["typing_until"] = now + TYPING_TTL
    try:
        with transaction.atomic():
            _row, created = Presence.objects.update_or_create(
                channel_name=channel_name, conversation_id=conversation_id, defaults=values
            )
    except IntegrityError:  # the same socket raced itself; the other write won
        created = False
    return created


def arrive(*, user, conversation_id, channel_name, now=None):
    now = _now(now)
    Presence.objects.filter(viewing_until__lte=now).delete()
    _upsert(user=user, conversation_id=conversation_id, channel_name=channel_name, now=now, typing=False)
    _broadcast(conversation_id)


def heartbeat(*, user, conversation_id, channel_name, now=None):
    now = _now(now)
    created = _upsert(user=user, conversation_id=conversation_id, channel_name=channel_name, now=now, typing=False)
    if created:  # the row had been swept (a long sleep): tell the others again
        _broadcast(conversation_id)


def typing(*, user, conversation_id, channel_name, now=None):
    """Returns True when this is news to colleagues (the typing state just began)."""
    now = _now(now)
    was_typing = Presence.objects.filter(
        channel_name=channel_name, conversation_id=conversation_id, typing_until__gt=now
    ).exists()
    _upsert(user=user, conversation_id=conversation_id, channel_name=channel_name, now=now, typing=True)
    if not was_typing:
        _broadcast(conversation_id)
    return not was_typing


def stop_typing(*, conversation_id, channel_name):
    updated = Presence.objects.filter(channel_name=channel_name, conversation_id=conversation_id).update(
        typing_until=None
    )
    if updated:
        _broadcast(conversation_id)


def leave(*, conversation_id, channel_name):
    deleted, _ = Presence.objects.filter(channel_name=channel_name, conversation_id=conversation_id).delete()
    if deleted:
        _broadcast(conversation_id)
