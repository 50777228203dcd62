"""The composer locks, with the reason, when the follower's reply window closes (§3)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox import services
from wechat.models import Contact, Conversation
from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]

FOLLOWER = "o_browser_clicker"


def test_the_composer_locks_when_the_window_runs_out(pages, account, agent):
    # A menu click opens a one-minute window with three sends (§3.1).
    wx.act(account, FOLLOWER, "click", key="MENU_HELP")
    conversation = Conversation.objects.get(contact__openid=FOLLOWER)
    services.take_conversation(conversation=conversation, actor=agent)
    # Let the minute be nearly over rather than wait for it.
    Contact.objects.filter(pk=conversation.contact_id).update(short_expires_at=timezone.now() + timedelta(seconds=4))

    page = pages(agent)
    page.goto(f"{page.url}c/{conversation.pk}/")
    expect(page.locator("#composer-lock")).to_be_hidden()
    expect(page.locator("#conv-header .window-badge")).to_contain_text("剩 3 条")
    expect(page.locator("#quota-hint")).to_contain_text("还剩 2 条")
    expect(page.locator("#content")).to_be_enabled()

    expect(page.locator("#composer-lock")).to_be_visible()
    expect(page.locator("#lock-reason")).to_contain_text("窗口已关闭")
    expect(page.locator("#content")).to_be_disabled()
    expect(page.locator("#send-button")).to_be_disabled()
    expect(page.locator("#conv-header .window-badge")).to_have_text("已关闭")

    # The server agrees after a refresh, and says why.
    page.reload()
    expect(page.locator("#lock-reason")).to_contain_text("需等待粉丝再次互动")
    expect(page.locator("#content")).to_be_disabled()
    expect(page.locator("#send-button")).to_be_disabled()


def test_the_composer_locks_live_when_the_follower_unfollows(pages, account, agent):
    wx.act(account, FOLLOWER, "text", content="谢谢，不用了")
    conversation = Conversation.objects.get(contact__openid=FOLLOWER)
    services.take_conversation(conversation=conversation, actor=agent)
    page = pages(agent)
    page.goto(f"{page.url}c/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator("#content")).to_be_enabled()

    wx.act(account, FOLLOWER, "unsubscribe")

    expect(page.locator("#timeline")).to_contain_text("粉丝取消了关注")
    expect(page.locator("#lock-reason")).to_contain_text("取消关注")
    expect(page.locator("#content")).to_be_disabled()
    expect(page.locator("#send-button")).to_be_disabled()
    assert not page.js_errors
