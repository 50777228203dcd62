"""A dropped socket loses nothing: the page reconnects with backoff and catches up from its last id."""

import pytest
from playwright.sync_api import expect

from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]


def test_messages_that_arrive_while_the_socket_is_down_show_up_after_reconnecting(pages, account, agent):
    routes = []
    server_up = {"value": True}

    def through_the_network(ws):
        # Every socket the page opens goes through here; while the "server"
        # is down the connection is refused at once.
        if not server_up["value"]:
            ws.close(code=1006)
            return
        ws.connect_to_server()
        routes.append(ws)

    page = pages(agent)
    page.route_web_socket("**/ws/inbox/", through_the_network)
    page.reload()
    page.click("a[data-tab=unassigned]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

    server_up["value"] = False
    routes[-1].close(code=1006)
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")

    wx.act(account, "o_browser_while_down", "text", content="断线期间发来的消息")
    wx.act(account, "o_browser_while_down_2", "text", content="第二条断线消息")
    server_up["value"] = True

    expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=30000)
    expect(page.locator("#rows")).to_contain_text("断线期间发来的消息")
    expect(page.locator("#rows")).to_contain_text("第二条断线消息")
    expect(page).to_have_title("(2) 客服工作台")
    assert not page.js_errors
