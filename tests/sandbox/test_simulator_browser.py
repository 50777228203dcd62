"""The simulator page in a real Chromium against uvicorn: a follower writes, the console receives."""

import json
import os
import time
from pathlib import Path

import pytest
import requests

from tests.sandbox.server import ROOT, Server
from wechat.models import InboundMessage
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxFault, SandboxFollower

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]

# Playwright's sync API runs an event loop in this thread; the ORM calls made
# between browser steps are ordinary blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def eventually(check, what, limit=15):
    """Wait (bounded) for a condition another process brings about."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def server(django_db_serialized_rollback, transactional_db):
    running = Server(SERVE_STATIC="true").start()
    yield running
    running.stop()


@pytest.fixture
def page(server, browser, request):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed or os.environ.get("SANDBOX_SCREENSHOTS"):
        artifacts = Path(ROOT) / "var" / "test-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / f"{request.node.name}.png"))
    context.close()


def send(server, account, body):
    raw = json.dumps(body, ensure_ascii=False).encode()
    return requests.post(
        f"{server.base}/sandbox/cgi-bin/message/custom/send",
        params={"access_token": wx.issue_token(account)},
        data=raw,
        timeout=10,
    ).json()


def test_a_follower_follows_writes_and_answers_a_menu_from_the_page(server, page, account):
    from playwright.sync_api import expect

    page.goto(f"{server.base}/sandbox/")
    expect(page.locator("h1")).to_contain_text("粉丝模拟器")

    page.fill("#new-follower input[name=nickname]", "小明")
    page.click("#new-follower button[type=submit]")
    expect(page.locator("#phone-title")).to_have_text("小明")
    expect(page.locator("#phone-window")).to_contain_text("未关注")
    openid = SandboxFollower.objects.get(nickname="小明").openid

    page.click("#btn-follow")
    expect(page.locator("#phone-window")).to_contain_text("已关注")
    eventually(lambda: InboundMessage.objects.filter(from_user=openid, event="subscribe").exists(), "subscribe push")

    page.click("#btn-emoji")
    page.fill("#text", "你好，我的订单还没到")
    page.click(".emoji-item >> nth=0")
    page.click("#btn-send")
    expect(page.locator(".msg.in.type-text .bubble")).to_have_text("你好，我的订单还没到😀")
    expect(page.locator(".msg.in.type-text .meta")).to_contain_text("已送达")
    message = eventually(lambda: InboundMessage.objects.filter(from_user=openid, msg_type="text").first(), "text push")
    assert message.content == "你好，我的订单还没到😀"

    # The console answers with a text link, an image and a menu; the phone renders each.
    image = wx.make_media(account, "image")
    menu = {
        "head_content": "问题解决了吗？",
        "list": [{"id": "101", "content": "解决了"}, {"id": "102", "content": "没有"}],
        "tail_content": "感谢反馈",
    }
    for msgtype, payload in [
        ("text", {"content": '请看 <a href="https://example.com/order">订单详情</a>'}),
        ("image", {"media_id": image.media_id}),
        ("msgmenu", menu),
    ]:
        assert send(server, account, {"touser": openid, "msgtype": msgtype, msgtype: payload})["errcode"] == 0
    expect(page.locator(".msg.out.type-text a")).to_have_attribute("href", "https://example.com/order")
    expect(page.locator(".msg.out.type-image img")).to_be_visible()
    assert page.locator(".msg.out.type-image img").evaluate("img => img.naturalWidth") > 0
    expect(page.locator(".msg.out")).to_have_count(3)
    page.click(".msg.out.type-msgmenu .menu-choice[data-menu-id='101']")
    choice = eventually(
        lambda: InboundMessage.objects.filter(from_user=openid, msg_type="text", content="解决了").first(),
        "menu choice",
    )
    assert choice.data["bizmsgmenuid"] == "101"
    assert page.js_errors == []


def test_faults_are_armed_from_the_page(server, page, account):
    from playwright.sync_api import expect

    page.goto(f"{server.base}/sandbox/")
    page.select_option("#fault-form select[name=kind]", "rate_limit")
    page.select_option("#fault-form select[name=endpoint]", "/cgi-bin/message/custom/send")
    page.fill("#fault-form input[name=count]", "2")
    page.click("#fault-form button[type=submit]")
    expect(page.locator("#faults li.armed")).to_contain_text("45011")
    fault = SandboxFault.objects.get()
    assert (fault.kind, fault.remaining, fault.endpoint) == ("rate_limit", 2, "/cgi-bin/message/custom/send")
    wx.act(account, "o_writer", "text", content="在吗", deliver=False)
    assert (
        send(server, account, {"touser": "o_writer", "msgtype": "text", "text": {"content": "x"}})["errcode"] == 45011
    )
    expect(page.locator("#calls li").first).to_contain_text("rate_limit")
    page.click("#faults-clear")
    expect(page.locator("#faults")).to_contain_text("没有待触发的故障")
    assert page.js_errors == []


def test_every_message_type_the_console_sends_is_rendered(server, page, account):
    from playwright.sync_api import expect

    from tests.sandbox.conftest import every_type

    payloads = every_type(account)
    for msgtype, payload in payloads.items():
        wx.act(account, "o_reader", "text", content="再来一条", deliver=False)
        assert send(server, account, {"touser": "o_reader", "msgtype": msgtype, msgtype: payload})["errcode"] == 0
    page.goto(f"{server.base}/sandbox/")
    page.click("#followers button[data-openid=o_reader]")
    for msgtype in payloads:
        expect(page.locator(f".msg.out.type-{msgtype}")).to_have_count(1)
    expect(page.locator(".msg.out.type-news .card-title")).to_have_text("T")
    expect(page.locator(".msg.out.type-miniprogrampage .card-desc")).to_contain_text("pages/index/index?foo=bar")
    expect(page.locator(".msg.out.type-msgmenu .menu-choice")).to_have_count(2)
    assert page.locator(".msg.out .bubble code").count() == 0  # nothing fell through to the raw fallback
    assert page.js_errors == []
