"""Logs: one line per event, JSON on request, a request id on every line, no secret ever.

The end-to-end cases run real processes with the project's own LOGGING setting
(a script under `manage.py shell`, uvicorn, `manage.py sendworker`) and read
what they wrote: that is what an operator's log collector would see.
"""

import json
import subprocess
import sys

import pytest
import requests
from django.test import Client

from config.logging import redact
from tests.conftest import APPID, text_xml
from tests.sending.conftest import open_window
from tests.sending.live import ROOT, Server, Worker, child_env, wait_until
from wechat import outbound
from wechat.models import Contact, OutboundMessage
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxToken

APP_SECRET = "appsecret-0123456789abcdef"
TOKEN = "wechat-signing-token-42"
AES_KEY = "KeyKeyKeyKeyKeyKeyKeyKeyKeyKeyKeyKeyKey4321"  # 43 characters
ACCESS_TOKEN = "ACCESS_TOKEN_81_chars_sample_value_xyz"
REDIS_PASSWORD = "redis-pw-do-not-show"
DB_PASSWORD = "db-pw-do-not-show"
SECRETS = (APP_SECRET, TOKEN, AES_KEY, ACCESS_TOKEN, REDIS_PASSWORD, DB_PASSWORD)


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token={ACCESS_TOKEN}&x=1",
        f"GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret={APP_SECRET}",
        json.dumps({"grant_type": "client_credential", "appid": "wx1", "secret": APP_SECRET}),
        json.dumps({"access_token": ACCESS_TOKEN, "expires_in": 7200}),
        str({"encoding_aes_key": AES_KEY, "token": TOKEN}),
        f"redis://:{REDIS_PASSWORD}@10.0.0.5:6379/0 is down",
        f"connection to postgres://kefu:{DB_PASSWORD}@db:5432/kefu failed",
        f"dsn host=db password={DB_PASSWORD} dbname=kefu",
    ],
)
def test_redact_hides_secrets_in_urls_json_reprs_and_dsns(text):
    cleaned = redact(text)
    assert all(secret not in cleaned for secret in SECRETS)
    assert "***" in cleaned


def test_redact_leaves_ordinary_text_alone():
    text = "outbound 12 queued → sent (errcode 0) openid=o_abc msg_signature=abc123"
    assert redact(text) == text


LOG_SCRIPT = f"""
import logging, requests
log = logging.getLogger("wechat.client")
log.info("POST https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token={ACCESS_TOKEN}")
log.info("stable_token body %s", {{"appid": "wx1", "secret": "{APP_SECRET}"}})
log.warning("configured values: %s %s %s", "{APP_SECRET}", "{TOKEN}", "{AES_KEY}")
log.error("channel layer down: redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
log.info("a message\\nwith two lines")
try:
    raise requests.ConnectionError(
        "HTTPSConnectionPool: Max retries exceeded with url: /cgi-bin/message/custom/send?access_token={ACCESS_TOKEN}"
    )
except requests.ConnectionError:
    log.exception("send failed")
print("EVENTS=6")
"""


def run_logging_script(log_json):
    env = child_env(
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_TOKEN=TOKEN,
        WECHAT_ENCODING_AES_KEY=AES_KEY,
        LOG_JSON="true" if log_json else "false",
        LOG_LEVEL="INFO",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", LOG_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert "EVENTS=6" in done.stdout.decode()
    return [line for line in done.stderr.decode("utf-8").splitlines() if line.strip()]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_json_logs_are_one_object_per_event_without_any_secret():
    lines = run_logging_script(log_json=True)
    events = [json.loads(line) for line in lines]  # every line parses on its own
    assert len(events) == 6
    assert {e["logger"] for e in events} == {"wechat.client"}
    assert all(set(e) >= {"time", "level", "logger", "request_id", "message"} for e in events)
    assert events[-1]["level"] == "ERROR" and "ConnectionError" in events[-1]["exc"]
    assert events[4]["message"] == "a message\nwith two lines"
    for line in lines:
        for secret in SECRETS:
            assert secret not in line


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_plain_logs_are_one_line_per_event_without_any_secret():
    lines = run_logging_script(log_json=False)
    assert len(lines) == 6
    assert all(" wechat.client [-] " in line for line in lines)
    assert "a message\\nwith two lines" in lines[4]
    assert "Traceback (most recent call last):\\n" in lines[5]
    for line in lines:
        for secret in SECRETS:
            assert secret not in line


def test_a_request_carries_the_proxys_request_id_or_a_new_one(db):
    client = Client()
    given = client.get("/accounts/login/", HTTP_X_REQUEST_ID="from-proxy-7f3a")
    assert given["X-Request-ID"] == "from-proxy-7f3a"
    hostile = client.get("/accounts/login/", HTTP_X_REQUEST_ID="bad id\nwith newline" + "x" * 100)
    assert "\n" not in hostile["X-Request-ID"] and " " not in hostile["X-Request-ID"]
    assert len(hostile["X-Request-ID"]) <= 64
    fresh = client.get("/accounts/login/")
    assert len(fresh["X-Request-ID"]) == 16


def json_lines(process):
    events = []
    for line in process.output().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def lines_of(server, logger):
    """The server's JSON log lines from `logger`."""
    return [e for e in json_lines(server) if e["logger"] == logger]


@pytest.mark.multiprocess
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_webhook_fast_path_lines_carry_the_request_id(account, tmp_path):
    server = Server(tmp_path, LOG_JSON="true", LOG_LEVEL="INFO")
    try:
        # A push with a wrong signature: refused, and the refusal is logged.
        response = requests.post(
            f"{server.base}/wechat/{APPID}/?signature=bad&timestamp=1&nonce=2",
            data=text_xml().encode(),
            headers={"X-Request-ID": "rid-fastpath-0001", "Content-Type": "text/xml"},
            timeout=30,
        )
        assert response.headers["X-Request-ID"] == "rid-fastpath-0001"
        assert response.status_code in (400, 403)
        wait_until(
            lambda: lines_of(server, "wechat.webhook"),
            timeout=20,
            what="the webhook's log line",
        )
    finally:
        server.stop()
    refusals = lines_of(server, "wechat.webhook")
    assert refusals and all(e["request_id"] == "rid-fastpath-0001" for e in refusals)


@pytest.mark.multiprocess
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_lines_carry_the_task_id_and_no_token(account, tmp_path, settings):
    server = Server(tmp_path)
    settings.WECHAT_API_BASE = server.api_base
    worker = None
    try:
        worker = Worker(server, tmp_path, threads=1, LOG_JSON="true", LOG_LEVEL="INFO")
        wx.act(account, "o_logged", "text", content="在吗", deliver=False)
        contact = open_window(Contact.objects.create(account=account, openid="o_logged"))
        message = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "您好"})
        wait_until(
            lambda: OutboundMessage.objects.get(pk=message.pk).status == OutboundMessage.Status.SENT,
            timeout=60,
            what="the worker to send",
        )
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
    events = json_lines(worker)
    sent = [e for e in events if e["logger"] == "wechat.outbound" and f"outbound {message.pk} " in e["message"]]
    assert sent and all(e["request_id"].startswith("task-") for e in sent)
    tokens = [t.value for t in SandboxToken.objects.all()]
    assert tokens
    for text in (worker.output(), server.output()):
        for value in [*tokens, "test-app-secret-value"]:
            assert value not in text


@pytest.mark.multiprocess
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_websocket_lines_carry_the_request_id(tmp_path):
    import asyncio

    import websockets

    server = Server(tmp_path, LOG_JSON="true", LOG_LEVEL="INFO")

    async def knock():
        url = server.base.replace("http://", "ws://") + "/ws/inbox/"
        headers = {"X-Request-ID": "rid-socket-0001", "Origin": server.base}
        # Closed before it is accepted: the server answers the handshake 403.
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers=headers, open_timeout=20):
                pass
        return refused.value.response.status_code

    try:
        assert asyncio.run(knock()) == 403  # no session: refused
        wait_until(
            lambda: lines_of(server, "inbox.consumers"),
            timeout=20,
            what="the consumer's log line",
        )
    finally:
        server.stop()
    lines = lines_of(server, "inbox.consumers")
    assert lines and all(e["request_id"] == "rid-socket-0001" for e in lines)
    assert "not logged in" in lines[0]["message"]
