"""Two agents on one follower: each sees the other viewing, and who is typing."""

import pytest
from playwright.sync_api import expect

from inbox import services
from wechat.models import Conversation
from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]


def test_a_second_agent_sees_the_first_viewing_and_typing(pages, account, agent, colleague):
    wx.act(account, "o_browser_popular", "text", content="有人吗？")
    conversation = Conversation.objects.get(contact__openid="o_browser_popular")
    services.take_conversation(conversation=conversation, actor=agent)

    li = pages(agent)
    li.goto(f"{li.url}c/{conversation.pk}/")
    expect(li.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(li.locator("#presence")).to_be_hidden()

    wang = pages(colleague)  # a second browser context: another agent
    wang.goto(f"{wang.url}c/{conversation.pk}/")
    expect(wang.locator("#presence")).to_have_text("小李 正在查看这个会话")
    expect(li.locator("#presence")).to_have_text("小王 正在查看这个会话")
    # Only the assignee may answer; the colleague is told why.
    expect(wang.locator("#lock-reason")).to_have_text("会话由 小李 负责，只有负责人或主管可以回复")

    li.fill("#content", "正在为您查询")
    li.locator("#content").press("End")
    expect(wang.locator("#presence")).to_contain_text("小李 正在输入…")

    li.close()
    expect(wang.locator("#presence")).to_be_hidden()
    assert not wang.js_errors
