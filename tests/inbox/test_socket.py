"""The agents' websocket through the real ASGI stack (origin check, session auth, routing, channel layer)."""

import asyncio
import json
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from inbox import services
from inbox.models import Presence
from tests.inbox.conftest import follower_says
from wechat import live
from wechat.models import Contact, Conversation, LiveUpdate, OfficialAccount

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    # Each test runs its own event loop; the in-memory layer must not keep
    # queues bound to a previous one.
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


def cookie_for(user):
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_socket(user=None, *, origin="http://testserver"):
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    if user is not None:
        cookie = await sync_to_async(cookie_for)(user)
        headers.append((b"cookie", cookie.encode()))
    socket = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _code = await socket.connect(timeout=10)
    return socket, connected


async def greeted_socket(user):
    """An open socket of `user` past its hello."""
    socket, connected = await open_socket(user)
    assert connected
    await socket.receive_json_from(timeout=10)
    return socket


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_a_socket_without_a_login_is_refused(account):
    async def scenario():
        socket, connected = await open_socket(None)
        assert not connected
        await socket.disconnect()

    run(scenario)


def test_a_socket_from_a_foreign_origin_is_refused(agent):
    async def scenario():
        socket, connected = await open_socket(agent, origin="https://evil.example")
        assert not connected
        await socket.disconnect()

    run(scenario)


def test_a_logged_in_agent_hears_a_new_message_live(account, agent):
    async def scenario():
        socket, connected = await open_socket(agent)
        assert connected
        hello = await socket.receive_json_from(timeout=10)
        assert hello == {"type": "hello", "user": agent.pk, "accounts": [account.pk]}

        message = await sync_to_async(follower_says)(account, "在吗？")

        event = await socket.receive_json_from(timeout=10)
        assert event["type"] == "live" and event["kind"] == "inbound"
        assert event["conversation"] == message.conversation_id
        assert event["data"]["preview"] == "在吗？"
        assert event["id"] == await sync_to_async(lambda: LiveUpdate.objects.latest("id").id)()
        await socket.disconnect()

    run(scenario)


def test_an_agent_of_another_account_hears_nothing_of_it(account, agent, outsider):
    other = OfficialAccount.objects.create(appid="wx_outsider_account", token="t", name="别家")
    other.agents.add(outsider)

    async def scenario():
        theirs, _ = await open_socket(outsider)
        await theirs.receive_json_from(timeout=10)  # hello
        ours, _ = await open_socket(agent)
        await ours.receive_json_from(timeout=10)

        await sync_to_async(follower_says)(account, "只给小李看", openid="o_ours")
        await sync_to_async(follower_says)(other, "给外人看", openid="o_theirs")

        # The outsider's first event is their own account's, not ours.
        event = await theirs.receive_json_from(timeout=10)
        assert event["account"] == other.pk and event["data"]["preview"] == "给外人看"
        event = await ours.receive_json_from(timeout=10)
        assert event["account"] == account.pk and event["data"]["preview"] == "只给小李看"
        await theirs.disconnect()
        await ours.disconnect()

    run(scenario)


def test_a_supervisor_hears_every_account(account, supervisor):
    other = OfficialAccount.objects.create(appid="wx_second_account", token="t")

    async def scenario():
        socket, _ = await open_socket(supervisor)
        hello = await socket.receive_json_from(timeout=10)
        assert set(hello["accounts"]) == {account.pk, other.pk}
        await sync_to_async(follower_says)(other, "第二个号", openid="o_second")
        assert (await socket.receive_json_from(timeout=10))["account"] == other.pk
        await socket.disconnect()

    run(scenario)


def test_watching_a_conversation_of_another_account_is_refused(account, outsider):
    conversation = Conversation.objects.get(pk=follower_says(account, "私密").conversation_id)

    async def scenario():
        socket, _ = await open_socket(outsider)
        await socket.receive_json_from(timeout=10)
        await socket.send_json_to({"type": "watch", "conversation": conversation.pk})
        assert await socket.receive_json_from(timeout=10) == {
            "type": "refused",
            "what": "watch",
            "conversation": conversation.pk,
        }
        await socket.send_json_to({"type": "typing"})  # not watching anything: ignored
        await socket.send_json_to({"type": "heartbeat"})
        assert await socket.receive_json_from(timeout=10) == {"type": "pong"}
        await socket.disconnect()

    run(scenario)
    assert not Presence.objects.exists()
    assert Contact.objects.get().typing_sent_at is None


def test_catch_up_returns_only_what_the_user_may_see_after_their_id(account, agent, outsider):
    other = OfficialAccount.objects.create(appid="wx_catchup_other", token="t")
    follower_says(account, "第一条", openid="o_a")
    seen = LiveUpdate.objects.latest("id").id
    follower_says(other, "别家的", openid="o_b")
    follower_says(account, "第二条", openid="o_a")
    follower_says(account, "第三条", openid="o_a")

    async def scenario():
        socket, _ = await open_socket(agent)
        await socket.receive_json_from(timeout=10)
        await socket.send_json_to({"type": "catch_up", "after": seen})
        reply = await socket.receive_json_from(timeout=10)
        assert reply["type"] == "caught_up" and reply["more"] is False
        assert [u["data"]["preview"] for u in reply["updates"]] == ["第二条", "第三条"]
        await socket.disconnect()

    run(scenario)


def test_the_http_catch_up_matches_the_socket(client, account, agent):
    follower_says(account, "第一条")
    seen = LiveUpdate.objects.latest("id").id
    follower_says(account, "第二条")
    client.force_login(agent)
    body = client.get(f"/api/updates/?after={seen}").json()
    assert [u["data"]["preview"] for u in body["updates"]] == ["第二条"]
    assert client.get("/api/updates/?after=0").json()["updates"][0]["data"]["preview"] == "第一条"
    client.logout()
    assert client.get("/api/updates/?after=0").status_code == 302


def test_a_colleague_sees_who_is_viewing_and_typing(account, agent, colleague):
    conversation = Conversation.objects.get(pk=follower_says(account, "在吗").conversation_id)
    services.take_conversation(conversation=conversation, actor=agent)

    async def scenario():
        watcher, _ = await open_socket(colleague)
        await watcher.receive_json_from(timeout=10)
        await watcher.send_json_to({"type": "watch", "conversation": conversation.pk})
        alone = await watcher.receive_json_from(timeout=10)
        assert alone["type"] == "presence"
        assert [v["name"] for v in alone["viewers"]] == ["小王"]

        typist, _ = await open_socket(agent)
        await typist.receive_json_from(timeout=10)
        await typist.send_json_to({"type": "watch", "conversation": conversation.pk})
        joined = await watcher.receive_json_from(timeout=10)
        assert sorted(v["name"] for v in joined["viewers"]) == ["小李", "小王"]
        assert (await typist.receive_json_from(timeout=10))["type"] == "presence"

        await typist.send_json_to({"type": "typing"})
        typing = await watcher.receive_json_from(timeout=10)
        assert {v["name"]: v["typing"] for v in typing["viewers"]} == {"小李": True, "小王": False}

        await typist.disconnect()
        left = await watcher.receive_json_from(timeout=10)
        assert [v["name"] for v in left["viewers"]] == ["小王"]
        await watcher.disconnect()

    run(scenario)
    # The assignee typing also tells the follower (throttled by wechat.outbound, §4).
    assert Contact.objects.get().typing_sent_at is not None
    assert not Presence.objects.exists()


def test_a_colleague_typing_does_not_show_typing_to_the_follower(account, agent, colleague):
    conversation = Conversation.objects.get(pk=follower_says(account, "在吗").conversation_id)
    services.take_conversation(conversation=conversation, actor=agent)

    async def scenario():
        socket, _ = await open_socket(colleague)
        await socket.receive_json_from(timeout=10)
        await socket.send_json_to({"type": "watch", "conversation": conversation.pk})
        await socket.receive_json_from(timeout=10)
        await socket.send_json_to({"type": "typing"})
        assert (await socket.receive_json_from(timeout=10))["viewers"][0]["typing"] is True
        await socket.disconnect()

    run(scenario)
    assert Contact.objects.get().typing_sent_at is None


def test_an_unknown_message_type_gets_an_error_not_a_crash(agent):
    async def scenario():
        socket, _ = await open_socket(agent)
        await socket.receive_json_from(timeout=10)
        await socket.send_json_to({"type": "drop_tables"})
        assert await socket.receive_json_from(timeout=10) == {"type": "error", "error": "unknown message type"}
        await socket.send_json_to({"type": "heartbeat"})
        assert await socket.receive_json_from(timeout=10) == {"type": "pong"}
        await socket.disconnect()

    run(scenario)


def hand_made_event(account_id, preview, *, event_id=10**9):
    """A live event as wechat.live publishes it, built without the database."""
    return {
        "type": live.EVENT_TYPE,
        "id": event_id,
        "kind": "inbound",
        "account": account_id,
        "conversation": None,
        "data": {"preview": preview},
    }


def test_a_live_event_reaches_the_agent_while_the_database_thread_is_busy(account, agent):
    # Delivering a live event needs no database, so it must not queue behind
    # database work: with 50 agents every event is 50 deliveries, and one
    # thread hop each saturated the server (docs/benchmarks.md §2). Here the
    # one thread that database calls run in is held; the event still arrives.
    release = threading.Event()

    async def scenario():
        socket = await greeted_socket(agent)
        busy = asyncio.ensure_future(sync_to_async(release.wait)(30))
        try:
            await asyncio.sleep(0.1)
            assert not busy.done()
            await get_channel_layer().group_send(live.account_group(account.pk), hand_made_event(account.pk, "快"))
            event = await socket.receive_json_from(timeout=5)
            assert event == {
                "type": "live",
                "id": 10**9,
                "kind": "inbound",
                "account": account.pk,
                "conversation": None,
                "data": {"preview": "快"},
            }
            assert not busy.done()
        finally:
            release.set()
            await busy
        await socket.disconnect()

    run(scenario)


def test_an_event_naming_another_account_is_not_forwarded_even_on_the_agents_group(account, agent):
    # The group is per account, but the consumer checks the event's account
    # too (a membership revoked while connected must not keep leaking).
    other = OfficialAccount.objects.create(appid="wx_not_theirs", token="t")

    async def scenario():
        socket = await greeted_socket(agent)
        layer, group = get_channel_layer(), live.account_group(account.pk)
        await layer.group_send(group, hand_made_event(other.pk, "不该看到", event_id=1))
        await layer.group_send(group, hand_made_event(account.pk, "该看到", event_id=2))
        event = await socket.receive_json_from(timeout=10)
        assert (event["id"], event["data"]["preview"]) == (2, "该看到")
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    run(scenario)


def test_every_agent_gets_the_same_text_and_a_reused_id_is_never_served_stale(account, agent, colleague):
    # The text of an event is encoded once per process for all its sockets;
    # an id alone must not decide what is sent (ids repeat across databases).
    async def scenario():
        first, second = await greeted_socket(agent), await greeted_socket(colleague)
        layer, group = get_channel_layer(), live.account_group(account.pk)
        await layer.group_send(group, hand_made_event(account.pk, "旧", event_id=7))
        texts = [await socket.receive_from(timeout=10) for socket in (first, second)]
        assert texts[0] == texts[1] and json.loads(texts[0])["data"]["preview"] == "旧"
        await layer.group_send(group, hand_made_event(account.pk, "新", event_id=7))
        for socket in (first, second):
            assert (await socket.receive_json_from(timeout=10))["data"]["preview"] == "新"
            await socket.disconnect()

    run(scenario)
