"""An agent logs in, sees a follower's message arrive live, and answers with text and an image."""

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from wechat import media
from wechat.models import Conversation, MediaAsset, OutboundMessage
from wechat.sandbox import follower as wx
from wechat.sandbox import media_samples

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]

FOLLOWER = "o_browser_follower_1"


@pytest.fixture
def library_image(account):
    asset = MediaAsset(account=account, title="发货说明图", kind=MediaAsset.Kind.IMAGE)
    asset.file.save("shipping.png", ContentFile(media_samples.png()), save=False)
    asset.size = asset.file.size
    asset.save()
    # Uploaded over real HTTP to the sandbox WeChat of the server under test.
    return media.upload_asset(asset)


def test_a_followers_message_appears_live_and_both_replies_reach_them(pages, account, agent, library_image):
    page = pages(agent)
    page.click("a[data-tab=unassigned]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

    wx.act(account, FOLLOWER, "text", content="你好，我的快递到哪了？[呲牙]")

    row = page.locator("#rows .row", has_text="我的快递到哪了")
    expect(row).to_be_visible()  # no reload: the socket told the page
    expect(row.locator(".window-badge")).to_contain_text("47h")
    expect(page).to_have_title("(1) 客服工作台")
    row.locator("a").click()

    conversation = Conversation.objects.get(contact__openid=FOLLOWER)
    expect(page.locator("#timeline")).to_contain_text("我的快递到哪了")
    expect(page.locator("#timeline .face").first).to_have_attribute("title", "[呲牙] 呲牙")
    expect(page.locator("#composer-lock")).to_contain_text("领取")
    page.click("[data-testid=take]")
    expect(page.locator("#composer-lock")).to_be_hidden()

    page.fill("#content", "您好，包裹已到上海转运中心 😀")
    expect(page.locator("#byte-count")).to_have_text(str(len("您好，包裹已到上海转运中心 😀".encode())))
    expect(page.locator("#quota-hint")).to_contain_text("4")
    page.click("[data-testid=send]")
    text_reply = page.locator("#timeline .item.out", has_text="上海转运中心")
    expect(text_reply.locator("[data-testid=out-status]")).to_have_text("已发送")

    page.select_option("#msgtype", "image")
    page.select_option("#image_asset", str(library_image.pk))
    page.click("[data-testid=send]")
    image_reply = page.locator("#timeline .item.out", has_text="[图片]")
    expect(image_reply.locator("[data-testid=out-status]")).to_have_text("已发送")

    received = list(wx.delivered(account, FOLLOWER))
    assert [m.msgtype for m in received] == ["text", "image"]
    assert received[0].body["text"]["content"] == "您好，包裹已到上海转运中心 😀"
    assert received[1].body["image"]["media_id"] == library_image.media_id
    assert OutboundMessage.objects.filter(conversation=conversation, status="sent").count() == 2
    expect(image_reply.locator("img.media")).to_be_visible()

    # On a phone the conversation is its own screen, with a way back to the list.
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.locator(".list-pane")).to_be_hidden()
    expect(page.locator("#composer")).to_be_visible()
    page.click("[data-back]")
    expect(page.locator(".list-pane")).to_be_visible()
    assert not page.js_errors
