"""Personas for the admin and ops pages: an admin, an operator, plus the shared agent and supervisor."""

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import make_user
from wechat import window
from wechat.models import Contact, Conversation, OutboundMessage

ADMIN_PASSWORD = "pw-admin_sun"


@pytest.fixture
def admin_user(db):
    return make_user("admin_sun", "admin", first_name="孙管理", is_staff=True)


@pytest.fixture
def operator(db):
    return make_user("ops_qian", "operator", first_name="钱运营", is_staff=True)


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def operator_client(operator):
    client = Client()
    client.force_login(operator)
    return client


def open_window(contact, at=None):
    """The follower just wrote: 5 sends / 48 h (§3.1)."""
    state = window.apply_action(contact.window_state(), msg_type="text", at=at or timezone.now())
    contact.set_window_state(state)
    contact.save()
    return contact


@pytest.fixture
def contact(account):
    return Contact.objects.create(account=account, openid="o_follower_0001", display_name="张三")


def outbound(account, contact, *, status="sent", errcode=None, text="你好", agent=None, created_at=None, **extra):
    """A ledger row as the worker would leave it (the admin only reads these)."""
    created_at = created_at or timezone.now()
    return OutboundMessage.objects.create(
        account=account,
        contact=contact,
        agent=agent,
        msgtype="text",
        payload={"touser": contact.openid, "msgtype": "text", "text": {"content": text}},
        preview=text,
        status=status,
        last_errcode=errcode,
        created_at=created_at,
        send_at=created_at,
        **extra,
    )


def conversation(account, contact, **fields):
    return Conversation.objects.create(account=account, contact=contact, **fields)
