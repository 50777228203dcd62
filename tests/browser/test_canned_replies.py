"""Typing "/" and a shortcut offers canned replies; picking one fills the composer."""

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from inbox import services
from inbox.models import CannedReply
from wechat.models import Conversation, MediaAsset
from wechat.sandbox import follower as wx
from wechat.sandbox import media_samples

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]


def test_a_canned_reply_is_inserted_by_its_shortcut(pages, account, agent):
    CannedReply.objects.create(account=account, shortcut="hours", title="营业时间", text="我们每天 9:00–18:00 在线")
    CannedReply.objects.create(account=None, shortcut="hello", title="问候", text="您好！")
    asset = MediaAsset(account=account, title="退货地址图", kind="image", media_id="MEDIA_RETURNS")
    asset.file.save("returns.png", ContentFile(media_samples.png()), save=True)
    CannedReply.objects.create(account=account, shortcut="returns", title="退货地址", kind="image", media=asset)
    wx.act(account, "o_browser_canned", "text", content="几点上班？")
    conversation = Conversation.objects.get(contact__openid="o_browser_canned")
    services.take_conversation(conversation=conversation, actor=agent)

    page = pages(agent)
    page.goto(f"{page.url}c/{conversation.pk}/")
    page.locator("#content").press_sequentially("亲，/h")
    menu = page.locator("#canned-menu")
    expect(menu).to_be_visible()
    expect(menu.locator("li")).to_have_count(2)
    page.locator("#content").press_sequentially("o")
    expect(menu.locator("li")).to_have_count(1)
    page.locator("#content").press("Enter")
    expect(page.locator("#content")).to_have_value("亲，我们每天 9:00–18:00 在线")
    expect(menu).to_be_hidden()

    page.fill("#content", "")
    page.locator("#content").press_sequentially("/ret")
    page.locator("#canned-menu li").first.click()
    expect(page.locator("#msgtype")).to_have_value("image")
    expect(page.locator("#image_asset")).to_have_value(str(asset.pk))
    assert not page.js_errors
