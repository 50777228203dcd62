"""Real-browser fixtures: a uvicorn server and a send worker on the test database.

Chromium itself is the shared session `browser` fixture of tests/conftest.py.

The server process serves `config.asgi` on a free loopback port with the same
file-backed test database (SQLite) or the same test database name
(PostgreSQL) as the test process, so rows written by the test are visible
to it once committed — hence `transactional_db` with serialized rollback
(the role groups made by a data migration survive the flush).
WECHAT_API_BASE points at that same server's sandbox, so replies really go
over HTTP to our fake WeChat, and the sandbox's follower API posts pushes
to the real webhook.
"""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.sending.live import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"


# Playwright's sync API (the shared session `browser` fixture) keeps an event
# loop running in the main thread; the database setup and the ORM calls these
# tests make between browser steps are ordinary blocking calls. Browser tests
# run in a pytest process of their own (`make test`: `-m browser`).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _wait_until_up(url, process, log_path):
    for _attempt in range(150):
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{Path(log_path).read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up:\n{Path(log_path).read_text()[-3000:]}")


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """(base_url, env) of a uvicorn server plus a send worker, both on the test database."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    media_root = tmp_path_factory.mktemp("media")
    logs = tmp_path_factory.mktemp("logs")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WECHAT_SANDBOX": "true",
        "WECHAT_API_BASE": f"{base_url}/sandbox",
        "MEDIA_ROOT": str(media_root),
        "SERVE_STATIC": "true",
        "LOG_LEVEL": "WARNING",
        "SEND_WORKER_THREADS": "2",
    }
    env.pop("TEST_DATABASE_NAME", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    server_log = logs / "uvicorn.log"
    worker_log = logs / "worker.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=server_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "sendworker", "--threads", "2", "--interval", "0.2", "--sweep-interval", "2"],
        cwd=ROOT,
        env=env,
        stdout=worker_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    saved = {name: getattr(settings, name) for name in ("WECHAT_API_BASE", "MEDIA_ROOT")}
    try:
        _wait_until_up(f"{base_url}/accounts/login/", server, server_log)
        settings.WECHAT_API_BASE = env["WECHAT_API_BASE"]
        settings.MEDIA_ROOT = str(media_root)
        yield {"base_url": base_url, "env": env, "server_log": server_log, "worker_log": worker_log, "worker": worker}
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)
        _stop(worker)
        _stop(server)


@pytest.fixture
def stack(live_stack, django_db_serialized_rollback, transactional_db):
    # Serialized rollback restores the role groups (a data migration) after
    # another transactional test flushed them — but only when the database
    # connection is the one set up before Playwright's sync API took over
    # this thread's context, so make sure of them here as well.
    from django.contrib.auth.models import Group

    from inbox import roles

    for name in roles.ALL:
        Group.objects.get_or_create(name=name)
    return live_stack


def give_token(account):
    """Store a valid sandbox access token for `account`, as the central refresher would.

    On SQLite the refresher holds the database write lock while it asks the
    token endpoint, and here that endpoint is served from the same database
    by the server under test; seeding the token keeps the tests on the
    sending path they are about.
    """
    from datetime import timedelta

    from django.utils import timezone

    from wechat.models import AccessToken
    from wechat.sandbox import follower as wx

    now = timezone.now()
    AccessToken.objects.update_or_create(
        account=account,
        defaults={"value": wx.issue_token(account), "expires_at": now + timedelta(hours=2), "fetched_at": now},
    )


@pytest.fixture
def account(stack):
    from wechat.models import OfficialAccount

    account = OfficialAccount.objects.create(
        appid="wx_browser_0001",
        name="浏览器测试号",
        token="browser-token",
        app_secret="browser-secret-value",
        original_id="gh_browser0001",
        crypto_mode=OfficialAccount.CryptoMode.PLAIN,
    )
    give_token(account)
    return account


@pytest.fixture
def agent(account):
    from tests.conftest import make_user

    user = make_user("agent_li", "agent", first_name="小李")
    account.agents.add(user)
    return user


@pytest.fixture
def colleague(account):
    from tests.conftest import make_user

    user = make_user("agent_wang", "agent", first_name="小王")
    account.agents.add(user)
    return user


@pytest.fixture
def pages(browser, stack, request):
    """Open browser contexts (one per agent); screenshots of each page on failure."""
    contexts = []

    def open_page(user, password=None):
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 860}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        page.goto(f"{stack['base_url']}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password or "pw-" + user.username)
        page.click("button[type=submit]")
        page.wait_for_url(f"{stack['base_url']}/")
        return page

    yield open_page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for index, context in enumerate(contexts):
            for page_index, page in enumerate(context.pages):
                path = ARTIFACTS / f"{request.node.name}-{index}-{page_index}.png"
                # A crashed page still lets the others be saved.
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(path), full_page=True)
    for context in contexts:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
