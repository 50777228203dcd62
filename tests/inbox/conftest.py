"""Inbox personas on top of the shared ones: a follower who wrote, their conversation."""

import time

import pytest
from django.utils import timezone

from tests.conftest import OPENID, event_xml, text_xml
from wechat import inbound
from wechat.models import Conversation
from wechat.pushes import parse_push


def follower_says(account, content="你好", *, openid=OPENID, msg_id=None, now=None):
    """The follower sends a text message; stored through the real inbound path."""
    msg_id = msg_id or str(time.time_ns())[-12:]
    push = parse_push(text_xml(content, msg_id=msg_id, openid=openid, create_time=int(time.time())).encode())
    return inbound.receive(account=account, push=push, now=now or timezone.now()).message


def follower_event(account, event, *, openid=OPENID, create_time=None, **fields):
    create_time = create_time or int(time.time())
    push = parse_push(event_xml(event, openid=openid, create_time=create_time, **fields).encode())
    return inbound.receive(account=account, push=push).message


@pytest.fixture
def conversation(account):
    message = follower_says(account, "我的订单还没到 /::D")
    return Conversation.objects.select_related("contact", "account").get(pk=message.conversation_id)


@pytest.fixture
def assigned(conversation, agent):
    conversation.assignee = agent
    conversation.save(update_fields=["assignee"])
    return conversation
