"""Shared personas and helpers: an account, a follower, agents, signed pushes."""

import time

import pytest
from django.contrib.auth.models import Group, User

from wechat.models import OfficialAccount
from wechat.sandbox import signing

APPID = "wx_test_appid_0001"
TOKEN = "test-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ORIGINAL_ID = "gh_testaccount"
OPENID = "o_follower_0001"


@pytest.fixture(autouse=True)
def _fresh_account_cache():
    """Each test's accounts are new rows (rolled back after): no cached row may outlive its test."""
    from wechat import webhook

    webhook.forget_account()
    yield
    webhook.forget_account()


@pytest.fixture
def account(db):
    return OfficialAccount.objects.create(
        appid=APPID,
        name="测试公众号",
        token=TOKEN,
        app_secret="test-app-secret-value",
        original_id=ORIGINAL_ID,
        encoding_aes_key=AES_KEY,
        crypto_mode=OfficialAccount.CryptoMode.COMPATIBLE,
    )


def make_user(username, role, **extra):
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def agent(db, account):
    user = make_user("agent_li", "agent", first_name="小李")
    account.agents.add(user)
    return user


@pytest.fixture
def colleague(db, account):
    user = make_user("agent_wang", "agent", first_name="小王")
    account.agents.add(user)
    return user


@pytest.fixture
def outsider(db):
    return make_user("agent_out", "agent", first_name="外人")


@pytest.fixture
def supervisor(db):
    return make_user("super_zhao", "supervisor", first_name="赵主管")


def text_xml(content="你好", msg_id="1001", openid=OPENID, create_time=None):
    return signing.push_xml(
        to_user=ORIGINAL_ID,
        from_user=openid,
        msg_type="text",
        create_time=create_time,
        fields={"Content": content, "MsgId": msg_id},
    )


def event_xml(event, openid=OPENID, create_time=None, **fields):
    return signing.push_xml(
        to_user=ORIGINAL_ID,
        from_user=openid,
        msg_type="event",
        create_time=create_time,
        fields={"Event": event, **fields},
    )


def post_push(client, body, *, mode="plain", appid=APPID, token=TOKEN, timestamp=None, query_overrides=None):
    query, data = signing.signed_request(
        token=token,
        body=body,
        appid=appid,
        aes_key=AES_KEY,
        mode=mode,
        timestamp=timestamp if timestamp is not None else time.time(),
    )
    query.update(query_overrides or {})
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/wechat/{appid}/?{qs}", data=data, content_type="text/xml")


# --- real browser -----------------------------------------------------------------
# One Playwright for the whole browser run: its sync API keeps an event loop
# running in the main thread, so a second instance (or any async_to_sync in the
# test thread) fails while it lives. `make test` therefore runs the browser
# tests in a pytest process of their own (`-m browser`).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def pytest_collection_modifyitems(items):
    """Every transactional test restores the migrated database afterwards.

    A plain transactional test flushes the tables at teardown and Django then
    re-creates content types and permissions under new ids but not the rows of
    data migrations (the role groups). A later test with serialized rollback
    would then collide on those content types. Serialized rollback everywhere
    keeps one consistent state: the database as migrated, groups and role
    permissions included.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        fixtures = getattr(item, "fixturenames", ())
        transactional = "transactional_db" in fixtures or "live_server" in fixtures
        if marker is not None:
            transactional = transactional or marker.kwargs.get("transaction") or (marker.args and marker.args[0])
        if transactional:
            kwargs = dict(marker.kwargs) if marker is not None else {}
            kwargs.update(transaction=True, serialized_rollback=True)
            item.add_marker(pytest.mark.django_db(**kwargs), append=False)
