"""Simplified Chinese by default; English one click away (Django's set_language)."""

import re

import pytest
from playwright.sync_api import expect

from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]


def test_an_agent_switches_the_console_to_english_and_back(pages, account, agent):
    wx.act(account, "o_browser_english", "text", content="Hello")
    page = pages(agent)
    expect(page.locator("a[data-tab=unassigned]")).to_contain_text("未分配")

    page.select_option("#lang-select", "en")
    expect(page.locator("a[data-tab=unassigned]")).to_contain_text("Unassigned")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click("a[data-tab=unassigned]")
    # The row's window label reads like wechat.window.describe: "47h59m · 5 left".
    expect(page.locator("#rows .window-badge")).to_have_text(re.compile(r"^4[78]h\d\dm · 5 left$"))

    page.select_option("#lang-select", "zh-hans")
    expect(page.locator("a[data-tab=unassigned]")).to_contain_text("未分配")
    assert not page.js_errors
