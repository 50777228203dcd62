"""kill -9 of a web worker mid-flight, and a restart of Redis under traffic.

Nothing answered `success` is lost, nothing is stored twice, and agents
recover: live events resume after Redis comes back, and what they missed
meanwhile is in the database feed they catch up from.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync

from tests.conftest import APPID, ORIGINAL_ID, TOKEN
from tests.reliability.servers import Uvicorn, free_port, request
from wechat import live
from wechat.models import InboundMessage, LiveUpdate
from wechat.sandbox import signing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]


def push(n, openid=None):
    xml = signing.push_xml(
        to_user=ORIGINAL_ID,
        from_user=openid or f"o_crash_{n % 7}",
        msg_type="text",
        fields={"Content": f"第 {n} 条", "MsgId": str(8_000_000 + n)},
    )
    query, data = signing.signed_request(token=TOKEN, body=xml)
    return f"/wechat/{APPID}/?" + "&".join(f"{k}={v}" for k, v in query.items()), data


def deliver_like_wechat(port, n, attempts=6):
    """Post push n until it is answered 200, as WeChat retries (§6.5). Returns the tries it took."""
    path, data = push(n)
    for attempt in range(1, attempts + 1):
        try:
            status, _, _ = request(port, "POST", path, data, {"Content-Type": "text/xml"}, timeout=10)
            if status == 200:
                return attempt
        except OSError:
            pass
        time.sleep(0.3 * attempt)
    raise AssertionError(f"push {n} never accepted")


def test_kill_9_of_a_web_worker_mid_flight_loses_nothing_and_stores_nothing_twice(account):
    server = Uvicorn(workers=2).start()
    try:
        pids = server.worker_pids()
        assert len(pids) == 2
        answered = []
        killed = threading.Event()

        def one(n):
            tries = deliver_like_wechat(server.port, n)
            answered.append(n)
            if len(answered) == 40 and not killed.is_set():
                killed.set()
                os.kill(pids[0], signal.SIGKILL)
            return tries

        with ThreadPoolExecutor(max_workers=8) as pool:
            tries = list(pool.map(one, range(200)))
        assert killed.is_set()
        # Every push was accepted (some only on a retry), each stored once.
        assert sorted(answered) == list(range(200))
        assert InboundMessage.objects.count() == 200
        assert InboundMessage.objects.values("msg_id").distinct().count() == 200
        assert LiveUpdate.objects.filter(kind="inbound").count() == 200
        # The supervisor replaced the dead worker.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (pids[0] in server.worker_pids() or len(server.worker_pids()) < 2):
            time.sleep(0.2)
        assert len(server.worker_pids()) == 2 and pids[0] not in server.worker_pids()
        assert max(tries) >= 1
    finally:
        server.stop()


class PrivateRedis:
    """A redis-server of this test's own, so it can be killed without touching anyone else's."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (make system-deps)")


def redis_restart_scenario(account, *, fresh_subscriber):
    """Push, kill Redis, push, restart Redis, push until an event is heard.

    Returns (first event, event heard after the restart or None, pushes sent).
    `fresh_subscriber`: listen after the restart on a new layer (a browser
    that reconnected) instead of the one subscribed before (a browser that
    stayed connected).
    """
    from channels_redis.pubsub import RedisPubSubChannelLayer

    redis = PrivateRedis().start()
    server = Uvicorn(workers=1, env={"REDIS_URL": redis.url}).start()
    group = live.account_group(account.pk)

    async def post(n):
        path, data = push(n)
        status, _, body = await asyncio.to_thread(
            request, server.port, "POST", path, data, {"Content-Type": "text/xml"}, timeout=15
        )
        return status, body

    async def heard(layer, channel, timeout):
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return None

    async def scenario():
        layer = RedisPubSubChannelLayer(hosts=[redis.url])
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        assert await post(1) == (200, b"success")
        before = await heard(layer, channel, 10)
        assert before is not None and before["kind"] == "inbound"

        redis.kill()
        # Redis is down: the push is still stored and answered; only the hint is lost.
        assert await post(2) == (200, b"success")

        redis.start()
        if fresh_subscriber:
            await layer.flush()
            layer = RedisPubSubChannelLayer(hosts=[redis.url])
            channel = await layer.new_channel()
            await layer.group_add(group, channel)
        event, n = None, 3
        deadline = time.monotonic() + 20
        while event is None and time.monotonic() < deadline:
            assert await post(n) == (200, b"success")
            event = await heard(layer, channel, 1)
            n += 1
        await layer.flush()
        return before, event, n - 1

    try:
        return async_to_sync(scenario)()
    finally:
        server.stop()
        redis.kill()


@needs_redis
def test_a_redis_restart_loses_no_push_and_a_reconnecting_agent_hears_again(account):
    before, after, sent = redis_restart_scenario(account, fresh_subscriber=True)
    assert after is not None, "no live event for a new subscriber after Redis came back"
    # Every push answered was stored, none twice — including the one sent while Redis was down.
    assert InboundMessage.objects.count() == sent
    assert InboundMessage.objects.values("msg_id").distinct().count() == sent
    # What the agent missed while Redis was down is in the feed it catches up
    # from (inbox/static live.js syncs every 15 s and on reconnect).
    missed = [u.data["message"] for u in live.updates_after(before["id"])]
    assert InboundMessage.objects.get(msg_id="8000002").pk in missed


@needs_redis
@pytest.mark.xfail(
    # Not strict: since publishing moved to a loop of its own the socket
    # sometimes does hear again (the publisher side reconnects; whether the
    # server's receive task resubscribes depends on timing), so a pass must
    # not fail the suite either.
    strict=False,
    reason=(
        "Known defect: channels_redis 4.3 RedisPubSubChannelLayer's receive task does not resubscribe after "
        "Redis restarts (redis-py 8.1), so a socket that stayed connected only gets updates through its 15 s "
        "catch-up sync. See docs/reliability.md."
    ),
)
def test_a_connected_agent_hears_live_events_again_after_a_redis_restart(account):
    _before, after, _sent = redis_restart_scenario(account, fresh_subscriber=False)
    assert after is not None
