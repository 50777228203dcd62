"""An event written in one web process reaches an agent whose websocket is on another."""

import pytest

from tests.multiprocess.procs import Agent, needs_production_services, session_cookie, unique_prefix
from tests.sending.live import Server
from wechat.models import Conversation, LiveUpdate
from wechat.sandbox import follower as wx

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    *needs_production_services(),
]


@pytest.fixture
def web_pair(tmp_path):
    """Two uvicorn processes on the test database and the shared Redis, with a channel prefix of their own."""
    prefix = unique_prefix()
    a = Server(tmp_path, CHANNEL_LAYER_PREFIX=prefix)
    b = Server(tmp_path, CHANNEL_LAYER_PREFIX=prefix)
    yield a, b
    a.stop()
    b.stop()


def test_a_push_posted_to_process_a_reaches_an_agent_on_process_b(account, agent, web_pair):
    a, b = web_pair
    listener = Agent(b, session_cookie(agent)).connect()
    try:
        assert listener.hello["accounts"] == [account.pk]
        result = wx.act(account, "o_fan_out", "text", content="跨进程的你好", webhook_base=a.base)
        assert result.delivered and result.push.url.startswith(a.base)

        event = listener.live(lambda m: m["kind"] == "inbound")
        conversation = Conversation.objects.get(contact__openid="o_fan_out")
        update = LiveUpdate.objects.filter(kind="inbound", conversation=conversation).get()
        assert event["id"] == update.id
        assert event["conversation"] == conversation.pk and event["account"] == account.pk
    finally:
        listener.close()


def test_an_agent_of_another_account_hears_nothing(account, outsider, agent, web_pair):
    a, b = web_pair
    stranger = Agent(b, session_cookie(outsider)).connect()
    insider = Agent(b, session_cookie(agent)).connect()
    try:
        assert stranger.hello["accounts"] == []
        wx.act(account, "o_private", "text", content="只给本号客服看", webhook_base=a.base)
        insider.live(lambda m: m["kind"] == "inbound")
        # What the stranger's socket holds is checked through the protocol:
        # a catch-up from 0 returns nothing of an account it may not see.
        assert stranger.catch_up(after=0) == []
    finally:
        stranger.close()
        insider.close()
