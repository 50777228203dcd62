"""Several send workers on PostgreSQL: every queued message goes out exactly once, and one token serves them all.

tests/sending/test_worker_processes.py covers the worker itself (retries,
schedules, kill -9 → `unknown`, SIGTERM) in both passes of the suite; here is
the production shape: a backlog of several hundred messages across many
followers drained by two worker processes racing each other for task rows
(`SELECT … FOR UPDATE SKIP LOCKED`) and for ledger rows (the claim's
compare-and-set), and several processes that need the access token at once.
"""

import hashlib
import subprocess
import sys

import pytest
from django.test import Client

from tests.multiprocess.procs import needs_production_services
from tests.sending.live import ROOT, Server, Worker, child_env, wait_until
from wechat import outbound
from wechat.models import AccessToken, Contact, OutboundMessage, SendLog
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxToken

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    *needs_production_services(),
]

SEND = "/cgi-bin/message/custom/send"
STABLE = "/cgi-bin/stable_token"
FOLLOWERS = 60
PER_FOLLOWER = 5  # the whole 48-hour quota (§3.1)


@pytest.fixture
def sandbox(tmp_path, settings):
    server = Server(tmp_path)
    settings.WECHAT_API_BASE = server.api_base
    yield server
    server.stop()


def follower_who_wrote(account, openid):
    result = wx.act(account, openid, "text", content="在吗？", client=Client())
    assert result.delivered, result.error
    return Contact.objects.get(account=account, openid=openid)


def test_two_workers_drain_three_hundred_messages_each_sent_exactly_once(account, sandbox, tmp_path):
    expected = {}
    for n in range(FOLLOWERS):
        openid = f"o_backlog_{n:03d}"
        contact = follower_who_wrote(account, openid)
        expected[openid] = [f"{openid}-{k}" for k in range(PER_FOLLOWER)]
        for content in expected[openid]:
            outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": content})
    total = FOLLOWERS * PER_FOLLOWER
    assert OutboundMessage.objects.filter(status=OutboundMessage.Status.QUEUED).count() == total

    workers = [Worker(sandbox, tmp_path, threads=4), Worker(sandbox, tmp_path, threads=4)]
    try:
        wait_until(
            lambda: OutboundMessage.objects.filter(status=OutboundMessage.Status.SENT).count() == total,
            timeout=240,
            interval=0.5,
            what=f"{total} sends",
        )
    finally:
        codes = [worker.stop() for worker in workers]
    assert codes == [0, 0]

    delivered = [m.payload["content"] for m in wx.delivered(account)]
    assert len(delivered) == total
    assert sorted(delivered) == sorted(c for contents in expected.values() for c in contents)
    for openid, contents in expected.items():
        assert [m.payload["content"] for m in wx.delivered(account, openid)] == contents  # each follower's order
    assert wx.calls(SEND).count() == total
    assert SendLog.objects.filter(endpoint__startswith=SEND).count() == total
    # Both processes took part (the worker column is host:pid:thread).
    pids = {w.split(":")[1] for w in OutboundMessage.objects.values_list("worker", flat=True)}
    assert pids == {str(worker.pid) for worker in workers}
    # …on one access token.
    assert wx.calls(STABLE).count() == 1


TOKEN_SCRIPT = """
import hashlib, os, pathlib, time
from wechat import tokens
from wechat.models import OfficialAccount
account = OfficialAccount.objects.get(appid=os.environ["TEST_APPID"])
gate = pathlib.Path(os.environ["TEST_GATE"])
print("READY", flush=True)
deadline = time.monotonic() + 60
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
value = tokens.get(account)
print("TOKEN", hashlib.sha256(value.encode()).hexdigest(), flush=True)
"""


def test_several_processes_needing_a_token_at_once_cause_one_fetch(account, sandbox, tmp_path):
    gate = tmp_path / "go"
    env = child_env(sandbox.api_base, TEST_APPID=account.appid, TEST_GATE=gate)
    logs = [tmp_path / f"token-{n}.log" for n in range(4)]
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", TOKEN_SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        wait_until(
            lambda: all("READY" in log.read_text() for log in logs), timeout=60, what="four processes to be ready"
        )
        gate.touch()  # all four ask at once
        for process in processes:
            assert process.wait(timeout=60) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    digests = {line.split()[1] for log in logs for line in log.read_text().splitlines() if line.startswith("TOKEN ")}
    stored = AccessToken.objects.get(account=account)
    assert digests == {hashlib.sha256(stored.value.encode()).hexdigest()}
    assert stored.fetch_count == 1
    assert wx.calls(STABLE).count() == 1
    assert SandboxToken.objects.count() == 1
    assert all(stored.value not in log.read_text() for log in logs)
