"""`wechat.sandbox.follower.act`: the window book, the push XML, delivery to the webhook."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings

from tests.conftest import OPENID
from wechat.models import Contact, InboundMessage, OfficialAccount
from wechat.pushes import parse_push
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxPush


def test_a_text_is_pushed_to_the_console_and_stored_there(client, account):
    result = wx.act(account, OPENID, "text", content="你好 😀", client=client)
    assert result.delivered
    assert result.body == b""  # the account is in compatible mode: encrypted push, empty answer
    message = InboundMessage.objects.get()
    assert message.content == "你好 😀"
    assert message.msg_id == result.push.msg_id
    assert Contact.objects.get().long_quota == 5


@pytest.mark.parametrize(("mode", "answer"), [("plain", b"success"), ("compatible", b""), ("safe", b"")])
def test_pushes_are_signed_for_the_account_mode(client, account, mode, answer):
    OfficialAccount.objects.filter(pk=account.pk).update(crypto_mode=mode)
    account.refresh_from_db()
    result = wx.act(account, OPENID, "location", latitude="31.2304", longitude="121.4737", label="上海", client=client)
    assert result.push.mode == mode
    assert (result.http_status, result.body) == (200, answer)
    assert InboundMessage.objects.get().data["label"] == "上海"


@pytest.mark.parametrize(
    ("action", "fields", "msg_type", "event"),
    [
        ("text", {"content": "满意", "bizmsgmenuid": "101"}, "text", ""),
        ("image", {}, "image", ""),
        ("voice", {"recognition": "你好"}, "voice", ""),
        ("location", {"latitude": "1", "longitude": "2"}, "location", ""),
        ("link", {"title": "文章", "url": "https://example.com/a"}, "link", ""),
        ("click", {"key": "CONTACT_KF"}, "event", "CLICK"),
        ("view", {"url": "https://example.com"}, "event", "VIEW"),
        ("subscribe", {"scene": "42"}, "event", "subscribe"),
        ("scan", {"scene": "42"}, "event", "SCAN"),
        ("unsubscribe", {}, "event", "unsubscribe"),
        ("location_report", {"latitude": "1", "longitude": "2"}, "event", "LOCATION"),
    ],
)
def test_every_action_builds_a_push_the_console_parses(account, action, fields, msg_type, event):
    result = wx.act(account, OPENID, action, deliver=False, **fields)
    push = parse_push(result.xml.encode())
    assert (push.msg_type, push.event) == (msg_type, event)
    assert push.from_user == OPENID
    assert push.to_user == account.original_id
    assert (push.msg_id is not None) == (msg_type != "event")
    assert result.push.status == SandboxPush.Status.NOT_SENT


def test_menu_choice_comes_back_with_its_id(account):
    push = parse_push(wx.act(account, OPENID, "text", content="满意", bizmsgmenuid="101", deliver=False).xml.encode())
    assert push.bizmsgmenuid == "101"


def test_a_scan_to_follow_carries_the_scene(account):
    push = parse_push(wx.act(account, "o_new", "subscribe", scene="spring", deliver=False).xml.encode())
    assert push.scene == "spring"
    assert wx.get(account, "o_new").qr_scene == "spring"


def test_the_window_book_follows_section_3(account):
    wx.act(account, OPENID, "click", key="K", deliver=False)
    book = wx.get(account, OPENID)
    assert (book.short_quota, book.long_quota) == (3, None)
    wx.act(account, OPENID, "text", content="hi", deliver=False)
    book.refresh_from_db()
    assert (book.short_quota, book.long_quota) == (3, 5)
    wx.act(account, OPENID, "unsubscribe", deliver=False)
    book.refresh_from_db()
    assert not book.subscribed and book.long_quota is None and book.unsubscribe_time is not None


def test_an_unfollowed_user_must_follow_before_writing(account):
    wx.act(account, OPENID, "unsubscribe", deliver=False)
    with pytest.raises(wx.FollowerError):
        wx.act(account, OPENID, "text", content="hi", deliver=False)
    wx.act(account, OPENID, "subscribe", deliver=False)
    assert wx.act(account, OPENID, "text", content="hi", deliver=False).push.msg_type == "text"


@pytest.mark.parametrize(("action", "fields"), [("dance", {}), ("text", {}), ("click", {}), ("link", {"title": "x"})])
def test_bad_actions_are_refused_clearly_and_record_nothing(account, action, fields):
    with pytest.raises(wx.FollowerError):
        wx.act(account, OPENID, action, deliver=False, **fields)
    assert not SandboxPush.objects.exists()


def test_the_webhook_base_comes_from_the_settings(account):
    with override_settings(SANDBOX_WEBHOOK_BASE="http://127.0.0.1:9/", WECHAT_API_BASE="http://x/sandbox"):
        assert wx.resolve_webhook_base() == "http://127.0.0.1:9"
    with override_settings(SANDBOX_WEBHOOK_BASE="", WECHAT_API_BASE="http://127.0.0.1:8000/sandbox"):
        assert wx.resolve_webhook_base() == "http://127.0.0.1:8000"
    with (
        override_settings(SANDBOX_WEBHOOK_BASE="", WECHAT_API_BASE="https://api.weixin.qq.com"),
        pytest.raises(wx.FollowerError),
    ):
        wx.resolve_webhook_base()


class SlowWebhook:
    """A loopback webhook that stays silent for the first `silent` requests."""

    def __init__(self, silent):
        self.silent = silent
        self.bodies = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                if len(outer.bodies) <= outer.silent:
                    outer.release.wait(5)  # longer than the push timeout
                    return
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def slow_webhook():
    hooks = []

    def make(silent):
        hooks.append(SlowWebhook(silent))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def test_a_push_without_an_answer_is_posted_again(account, slow_webhook):
    hook = slow_webhook(silent=2)
    result = wx.act(account, OPENID, "text", content="重试", webhook_base=hook.base, timeout=0.3)
    assert result.delivered
    assert result.attempts == 3
    assert len(set(hook.bodies)) == 1  # the very same push each time


def test_after_four_silent_deliveries_the_push_has_failed(account, slow_webhook):
    hook = slow_webhook(silent=10)
    result = wx.act(account, OPENID, "text", content="没人理", webhook_base=hook.base, timeout=0.2)
    assert not result.delivered
    assert result.attempts == wx.MAX_DELIVERIES == 4
    assert result.push.status == SandboxPush.Status.FAILED
    assert len(hook.bodies) == 4


def test_a_refusing_webhook_is_not_retried(client, account):
    push = wx.record(account, OPENID, "text", content="y")
    push.account.appid = "wx_unknown"  # the console has no such account: 404
    refused = wx.deliver_push(push, client=client)
    assert (refused.delivered, refused.http_status, refused.attempts) == (False, 404, 1)
    assert SandboxPush.objects.get().status == SandboxPush.Status.REFUSED
