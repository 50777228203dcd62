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


# --- real processes on loopback ---------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn serving the console and the sandbox WeChat on a free port, on the test database."""
    from tests.sending.live import Server

    with django_db_blocker.unblock():
        server = Server(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


@pytest.fixture
def wechat(transactional_db, sandbox_server, settings):
    """Point this process's client at the sandbox (committed rows: the server must see them)."""
    from wechat.sandbox import faults

    settings.WECHAT_API_BASE = sandbox_server.api_base
    settings.SANDBOX_WEBHOOK_BASE = sandbox_server.base
    faults.clear()
    yield sandbox_server
    faults.clear()


@pytest.fixture
def workers(wechat, tmp_path):
    """Start send workers as real subprocesses; all are stopped (or killed) at the end."""
    from tests.sending.live import Worker

    started = []

    def start(**kwargs):
        worker = Worker(wechat, tmp_path, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
