"""Helpers for the sandbox's own tests: an API caller, a token, a follower."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import APPID, OPENID
from wechat.sandbox import follower as wx
from wechat.sandbox import platform

SECRET = "test-app-secret-value"  # the `account` fixture's app_secret


class Api:
    """Calls /sandbox/cgi-bin/… through Django's test client, token added."""

    def __init__(self, client, token=""):
        self.client = client
        self.token = token

    def url(self, path, params=None, token=True):
        params = dict(params or {})
        if token and self.token and "access_token" not in params:
            params["access_token"] = self.token
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        return f"/sandbox{path}" + (f"?{qs}" if qs else "")

    def get(self, path, token=True, **params):
        return self.client.get(self.url(path, params, token))

    def post_raw(self, path, raw, token=True, content_type="application/json", **params):
        return self.client.post(self.url(path, params, token), data=raw, content_type=content_type)

    def post(self, path, body, token=True, **params):
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self.post_raw(path, raw, token, **params)

    def send(self, body):
        return self.post("/cgi-bin/message/custom/send", body).json()

    def text(self, content="你好", openid=OPENID):
        return self.send({"touser": openid, "msgtype": "text", "text": {"content": content}})


@pytest.fixture
def clock(monkeypatch):
    """The platform's clock, movable by the test (views run in this process)."""

    class Clock:
        now = timezone.now()

        def advance(self, **delta):
            self.now += timedelta(**delta)

    c = Clock()
    monkeypatch.setattr(platform, "now", lambda: c.now)
    return c


@pytest.fixture
def token(account):
    return wx.issue_token(account)


@pytest.fixture
def api(client, token):
    return Api(client, token)


@pytest.fixture
def anon_api(client):
    return Api(client)


@pytest.fixture
def follower(account):
    """A follower who just wrote a message: the 5 / 48 h window is open (§3.1)."""
    wx.act(account, OPENID, "text", content="在吗？", deliver=False)
    return wx.get(account, OPENID)


def every_type(account):
    """A valid payload of each of the eleven types but mpnews (its news media is legacy)."""
    image = wx.make_media(account, "image").media_id
    thumb = wx.make_media(account, "thumb").media_id
    return {
        "text": {"content": "Hello"},
        "image": {"media_id": image},
        "voice": {"media_id": wx.make_media(account, "voice").media_id},
        "video": {
            "media_id": wx.make_media(account, "video").media_id,
            "thumb_media_id": thumb,
            "title": "T",
            "description": "D",
        },
        "music": {
            "title": "T",
            "description": "D",
            "musicurl": "https://m",
            "hqmusicurl": "https://hq",
            "thumb_media_id": thumb,
        },
        "news": {"articles": [{"title": "T", "description": "D", "url": "https://u", "picurl": "https://p"}]},
        "mpnewsarticle": {"article_id": "ARTICLE_ID"},
        "msgmenu": {
            "head_content": "满意吗？",
            "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}],
            "tail_content": "谢谢",
        },
        "wxcard": {"card_id": "CARD_ID"},
        "miniprogrampage": {
            "title": "T",
            "appid": "wxmini",
            "pagepath": "pages/index/index?foo=bar",
            "thumb_media_id": image,
        },
    }


__all__ = ["APPID", "SECRET"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the browser fixture know whether the test failed (screenshot then).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
