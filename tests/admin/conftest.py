"""Personas for the admin and ops pages: an admin, an operator, plus the shared agent and supervisor."""

import importlib

import pytest
import requests
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from tests.conftest import make_user
from wechat import window
from wechat.models import Contact, Conversation, OutboundMessage

ADMIN_PASSWORD = "pw-admin_sun"


@pytest.fixture(autouse=True)
def role_groups(db):
    """The roles of inbox 0002/0003. A transactional test elsewhere flushes migration data; put it back."""
    if not Group.objects.filter(name="admin").exists():
        from django.apps import apps

        importlib.import_module("inbox.migrations.0003_role_permissions").apply_role_permissions(apps)


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


# --- the sandbox WeChat on loopback ---------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn serving the console and the sandbox WeChat on a free port, on the test database."""
    from tests.sending.live import Server

    class SandboxServer(Server):
        def _ready(self):
            # Ready when the sandbox answers; /healthz belongs to someone else's work in progress.
            if not self.alive():
                raise AssertionError(f"uvicorn exited:\n{self.output()}")
            try:
                return requests.get(f"{self.api_base}/cgi-bin/token", timeout=1).status_code == 200
            except requests.RequestException:
                return False

    with django_db_blocker.unblock():
        server = SandboxServer(tmp_path_factory.mktemp("admin-server"))
    yield server
    server.stop()


@pytest.fixture
def wechat(transactional_db, sandbox_server, settings, tmp_path):
    """Point this process's WeChat client at the sandbox; committed rows are what the server sees."""
    settings.WECHAT_API_BASE = sandbox_server.api_base
    settings.SANDBOX_WEBHOOK_BASE = sandbox_server.base
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # The machine is shared and the server may be cold: allow a slow loopback
    # answer rather than turning it into an "unknown" outcome. Still bounded.
    settings.WECHAT_READ_TIMEOUT = 30
    from wechat.sandbox import faults

    faults.clear()
    yield sandbox_server
    faults.clear()
