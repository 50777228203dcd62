"""A Redis restart while agents are connected: nothing written is lost, agents catch up from the database.

The channel layer is at-most-once; the LiveUpdate table is the truth
(wechat/live.py). Here a redis-server of the test's own (the shared one serves
other runs) is stopped while two web processes and an agent are up. A follower
writes meanwhile: the webhook still stores the message and answers WeChat at
once. Redis comes back; the agent reconnects, asks for a catch-up from the last
id it saw, and gets exactly what it missed; live events flow again.
"""

import pytest

from tests.multiprocess.procs import (
    Agent,
    PrivateRedis,
    needs_production_services,
    needs_redis_server,
    session_cookie,
    unique_prefix,
)
from tests.sending.live import Server, wait_until
from wechat.models import LiveUpdate
from wechat.sandbox import follower as wx

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    *needs_production_services(),
    needs_redis_server(),
]


@pytest.fixture
def redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def web_pair(tmp_path, redis):
    prefix = unique_prefix()
    a = Server(tmp_path, REDIS_URL=redis.url, CHANNEL_LAYER_PREFIX=prefix)
    b = Server(tmp_path, REDIS_URL=redis.url, CHANNEL_LAYER_PREFIX=prefix)
    yield a, b
    a.stop()
    b.stop()


def says(account, server, content, openid="o_restart"):
    result = wx.act(account, openid, "text", content=content, webhook_base=server.base)
    assert result.delivered, result.error
    # One post: the webhook answered within WeChat's wait (§6.5), Redis or not.
    assert result.attempts == 1
    return LiveUpdate.objects.filter(kind="inbound").latest("id")


def test_agents_catch_up_on_everything_written_while_redis_was_down(account, agent, redis, web_pair):
    a, b = web_pair
    cookie = session_cookie(agent)
    first = Agent(b, cookie).connect()
    try:
        before = says(account, a, "Redis 还在")
        assert first.live(lambda m: m["kind"] == "inbound")["id"] == before.id

        redis.stop()
        missed = [says(account, a, f"Redis 停了 {n}") for n in range(3)]
        assert [u.id for u in missed] == sorted(u.id for u in missed) and missed[0].id > before.id
        redis.start()

        # The page reconnects (static/inbox/live.js) and asks from its cursor.
        first.close()
        again = Agent(b, cookie).connect()
        try:
            caught = again.catch_up(after=first.last_id)
            inbound = [u["id"] for u in caught if u["kind"] == "inbound"]
            assert inbound == [u.id for u in missed]

            # Live events flow again once the layer has its connections back;
            # each attempt is a new, stored message (a publish lost on a stale
            # connection is the at-most-once the catch-up exists for).
            def hears_a_new_message():
                latest = says(account, a, "Redis 回来了")
                try:
                    return again.live(lambda m: m["id"] == latest.id, timeout=3)
                except AssertionError:
                    again.catch_up()
                    return None

            wait_until(hears_a_new_message, timeout=60, interval=0.5, what="live events after the restart")
        finally:
            again.close()
    finally:
        first.close()
