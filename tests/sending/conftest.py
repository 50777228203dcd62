"""Personas for sending: a follower who just wrote, one who never did, their conversation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import OPENID
from wechat import window
from wechat.models import Contact, Conversation


def open_window(contact, *, at=None, msg_type="text", event=""):
    at = at or timezone.now()
    state = window.apply_action(contact.window_state(), msg_type=msg_type, event=event, at=at)
    contact.set_window_state(state)
    contact.last_inbound_at = at
    contact.save()
    return contact


@pytest.fixture
def follower(account):
    """A follower who wrote a moment ago: 5 sends for 48 hours."""
    contact = Contact.objects.create(account=account, openid=OPENID)
    return open_window(contact, at=timezone.now() - timedelta(seconds=5))


@pytest.fixture
def stranger(account):
    """Follows the account but never interacted: no window."""
    return Contact.objects.create(account=account, openid="o_never_wrote")


@pytest.fixture
def conversation(account, follower):
    now = timezone.now()
    return Conversation.objects.create(
        account=account,
        contact=follower,
        waiting_since=now,
        first_inbound_at=now,
        last_message_at=now,
        last_message_preview="在吗",
        last_message_direction="in",
    )
