"""De-duplication by constraint, window state in the same transaction, publication after commit."""

import threading
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test import Client

from tests.conftest import AES_KEY, OPENID, post_push, text_xml
from tests.webhook.helpers import fixture
from wechat import crypto, live
from wechat.models import Contact, Conversation, InboundMessage, OfficialAccount


def test_events_are_deduplicated_by_sender_time_and_event(client, account):
    now = int(time.time())
    body = fixture("event_click.xml", now=now)
    assert post_push(client, body).status_code == 200
    assert post_push(client, body).status_code == 200
    assert InboundMessage.objects.filter(event="CLICK").count() == 1
    # The same second but another event is another row.
    post_push(client, fixture("event_view.xml", now=now))
    assert InboundMessage.objects.count() == 2


def test_the_same_msgid_on_another_account_is_not_a_duplicate(client, account):
    OfficialAccount.objects.create(appid="wx_second", token="t2", original_id="")
    from wechat.sandbox import signing

    post_push(client, text_xml(msg_id="5"))
    post_push(
        client,
        signing.push_xml(to_user="gh_x", from_user=OPENID, msg_type="text", fields={"Content": "hi", "MsgId": "5"}),
        appid="wx_second",
        token="t2",
    )
    assert InboundMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_posts_store_exactly_one_row(account):
    body = text_xml("同时到达", msg_id="900001")
    results = []
    barrier = threading.Barrier(8)

    def deliver():
        barrier.wait()
        try:
            results.append(post_push(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8
    assert InboundMessage.objects.filter(msg_id="900001").count() == 1
    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 1
    account.refresh_from_db()
    assert account.duplicate_pushes == 7


def test_the_window_is_updated_with_the_inbound_row(client, account):
    post_push(client, fixture("event_click.xml"))
    contact = Contact.objects.get()
    assert contact.short_quota == 3 and contact.short_opened_by == "CLICK"
    assert contact.long_opened_at is None
    post_push(client, text_xml(msg_id="77"))
    contact.refresh_from_db()
    assert contact.long_quota == 5 and contact.long_used == 0
    assert contact.short_quota == 3  # the click grant coexists
    post_push(client, fixture("event_unsubscribe.xml", now=int(time.time()) + 1))
    contact.refresh_from_db()
    assert contact.subscribed is False
    assert contact.long_opened_at is None and contact.short_opened_at is None
    assert contact.unsubscribed_at is not None


def test_follow_opens_a_conversation_but_location_reports_do_not(client, account):
    post_push(client, fixture("event_location.xml"))
    assert Conversation.objects.count() == 0
    assert InboundMessage.objects.get().conversation is None
    post_push(client, fixture("event_subscribe.xml"))
    assert Conversation.objects.count() == 1
    assert Contact.objects.get().subscribed_at is not None


def test_a_resolved_conversation_is_followed_by_a_new_one(client, account):
    post_push(client, text_xml(msg_id="1"))
    Conversation.objects.update(status="resolved")
    post_push(client, text_xml(msg_id="2"))
    assert Conversation.objects.count() == 2
    assert Conversation.objects.exclude(status="resolved").get().inbound.get().msg_id == "2"


def test_a_retried_push_after_a_resolve_opens_nothing(client, account):
    """WeChat retries a push the agent has already resolved: no new conversation, window untouched."""
    body = text_xml("第一条", msg_id="1")
    post_push(client, body)
    Conversation.objects.update(status="resolved")
    Contact.objects.update(long_used=2)  # two replies were sent meanwhile
    updates = live.updates_after(0)
    assert post_push(client, body).status_code == 200
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().status == "resolved"
    assert Contact.objects.get().long_used == 2
    assert InboundMessage.objects.count() == 1
    assert live.updates_after(0) == updates
    assert OfficialAccount.objects.get(pk=account.pk).duplicate_pushes == 1


def test_a_first_push_creates_follower_and_conversation_and_names_them(client, account):
    post_push(client, text_xml("你好", msg_id="7"))
    message = InboundMessage.objects.get()
    conversation = Conversation.objects.get()
    assert message.conversation == conversation
    assert conversation.contact == message.contact == Contact.objects.get(openid=OPENID)
    assert conversation.waiting_since is not None and conversation.first_inbound_at is not None
    assert conversation.last_message_preview == "你好" and conversation.last_message_direction == "in"
    (update,) = live.updates_after(0)
    assert update.conversation_id == conversation.pk
    assert update.data == {"message": message.pk, "contact": message.contact_id, "preview": "你好"}


def test_a_push_encrypted_with_the_previous_key_is_accepted_during_rotation(client, account):
    account.previous_encoding_aes_key = AES_KEY
    account.encoding_aes_key = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
    account.save()
    # post_push encrypts with AES_KEY, now the previous key.
    r = post_push(client, text_xml("旧密钥", msg_id="31"), mode="safe")
    assert r.status_code == 200
    assert InboundMessage.objects.get().content == "旧密钥"
    assert crypto.decode_key(account.encoding_aes_key)


def test_compatible_mode_push_is_read_from_the_encrypted_part(client, account):
    r = post_push(client, text_xml("兼容模式", msg_id="32"), mode="compatible")
    assert r.status_code == 200 and r.content == b""
    assert InboundMessage.objects.get().content == "兼容模式"


@pytest.mark.django_db(transaction=True)
def test_each_stored_message_is_published_after_commit(account):
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(live.account_group(account.pk), channel)
        try:
            response = await sync_to_async(lambda: post_push(Client(), text_xml("实时", msg_id="55")))()
            assert response.status_code == 200
            return await layer.receive(channel)
        finally:
            await layer.group_discard(live.account_group(account.pk), channel)

    event = async_to_sync(scenario)()
    message = InboundMessage.objects.get()
    assert event["type"] == "live.update"
    assert event["kind"] == "inbound"
    assert event["data"]["message"] == message.pk
    assert event["conversation"] == message.conversation_id
