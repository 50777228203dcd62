"""/cgi-bin/message/custom/send is as strict as §2 and gates on the window of §3."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import OPENID
from tests.sandbox.conftest import every_type
from wechat.models import OfficialAccount
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxMessage

SEND = "/cgi-bin/message/custom/send"


def test_a_text_with_emoji_is_accepted_and_delivered(api, account, follower):
    assert api.text('您好 😀 <a href="https://example.com">订单</a>') == {"errcode": 0, "errmsg": "ok"}
    message = wx.delivered(account, OPENID).get()
    assert message.msgtype == "text"
    assert message.payload == {"content": '您好 😀 <a href="https://example.com">订单</a>'}


def test_unicode_escapes_in_the_body_are_refused_with_40033(api, follower):
    raw = json.dumps({"touser": OPENID, "msgtype": "text", "text": {"content": "你好"}}).encode()
    assert b"\\u4f60" in raw
    assert api.post_raw(SEND, raw).json()["errcode"] == 40033
    assert not SandboxMessage.objects.exists()


def test_an_escaped_backslash_before_u_is_not_an_escape(api, follower):
    raw = json.dumps({"touser": OPENID, "msgtype": "text", "text": {"content": "C:\\users"}}).encode()
    assert api.post_raw(SEND, raw).json()["errcode"] == 0


@pytest.mark.parametrize(
    ("raw", "errcode"),
    [(b"", 44002), (b"not json", 47001), (b"[1, 2]", 47001), (b"\xff\xfe", 47001)],
)
def test_a_body_that_is_not_a_json_object_is_refused(api, follower, raw, errcode):
    assert api.post_raw(SEND, raw).json()["errcode"] == errcode


def test_msgtype_and_payload_key_must_agree(api, follower):
    # The tutorial's music builder puts the payload under "video" (§2.5).
    body = {"touser": OPENID, "msgtype": "music", "video": {"title": "t", "musicurl": "u", "hqmusicurl": "h"}}
    answer = api.send(body)
    assert answer["errcode"] == 47001
    assert "missing music object" in answer["errmsg"]


def test_a_second_message_type_key_is_refused(api, follower):
    body = {"touser": OPENID, "msgtype": "text", "text": {"content": "a"}, "voice": {"media_id": "x"}}
    assert api.send(body)["errcode"] == 47001


def test_the_payload_must_be_an_object_not_a_json_string(api, follower):
    body = {"touser": OPENID, "msgtype": "text", "text": json.dumps({"content": "hi"})}
    assert api.send(body)["errcode"] == 45162


def test_an_unknown_msgtype_is_40008(api, follower):
    assert api.send({"touser": OPENID, "msgtype": "link", "link": {"title": "x"}})["errcode"] == 40008
    assert api.send({"touser": OPENID, "text": {"content": "x"}})["errcode"] == 40008


def test_empty_text_is_44004(api, follower):
    assert api.text("")["errcode"] == 44004


def test_text_of_2048_bytes_passes_and_one_more_byte_is_45002(api, follower):
    assert api.text("好" * 682 + "ab")["errcode"] == 0  # 2046 + 2 bytes
    assert api.text("好" * 682 + "abc")["errcode"] == 45002


def test_news_takes_exactly_one_article(api, follower):
    article = {"title": "T", "description": "D", "url": "https://example.com", "picurl": "https://example.com/p.jpg"}
    news = {"touser": OPENID, "msgtype": "news"}
    assert api.send({**news, "news": {"articles": [article, article]}})["errcode"] == 45008
    assert api.send({**news, "news": {"articles": article}})["errcode"] == 45162
    assert api.send({**news, "news": {"articles": []}})["errcode"] == 44003
    assert api.send({**news, "news": {"articles": [article]}})["errcode"] == 0


def test_an_unknown_openid_is_40003(api, follower):
    assert api.text(openid="o_someone_else")["errcode"] == 40003
    assert api.send({"msgtype": "text", "text": {"content": "x"}})["errcode"] == 40003


def test_someone_who_never_followed_is_43004(api, account):
    wx.create_follower(account, "o_visitor", nickname="路人")
    assert api.text(openid="o_visitor")["errcode"] == 43004


def test_someone_who_unfollowed_is_45015(api, account, follower):
    wx.act(account, OPENID, "unsubscribe", deliver=False)
    assert api.text()["errcode"] == 45015


def test_after_48_hours_the_window_is_closed(api, account, follower):
    wx.age(account, OPENID, seconds=48 * 3600)
    assert api.text()["errcode"] == 45015


def test_a_message_grants_five_sends_then_45047(api, account, follower):
    answers = [api.text(f"第{i}条")["errcode"] for i in range(6)]
    assert answers == [0, 0, 0, 0, 0, 45047]
    # The follower writing again re-grants the quota (§3.1).
    wx.act(account, OPENID, "text", content="还有问题", deliver=False)
    assert api.text()["errcode"] == 0


def test_a_menu_click_grants_three_sends_for_a_minute(api, account):
    wx.act(account, "o_clicker", "click", key="CONTACT", deliver=False)
    answers = [api.text(openid="o_clicker")["errcode"] for _ in range(4)]
    assert answers == [0, 0, 0, 45047]
    wx.act(account, "o_clicker", "click", key="CONTACT", deliver=False)
    wx.age(account, "o_clicker", seconds=61)
    assert api.text(openid="o_clicker")["errcode"] == 45015


def test_a_view_click_opens_no_window(api, account):
    wx.act(account, "o_viewer", "view", url="https://example.com", deliver=False)
    assert api.text(openid="o_viewer")["errcode"] == 45015


def test_image_needs_a_live_image_media_id(api, account, follower):
    image = wx.make_media(account, "image")
    voice = wx.make_media(account, "voice")
    send = {"touser": OPENID, "msgtype": "image"}
    assert api.send({**send, "image": {"media_id": "no-such-media"}})["errcode"] == 40007
    assert api.send({**send, "image": {}})["errcode"] == 40007
    assert api.send({**send, "image": {"media_id": voice.media_id}})["errcode"] == 40004
    assert api.send({**send, "image": {"media_id": image.media_id}})["errcode"] == 0


def test_expired_media_is_40007(api, account, follower):
    old = wx.make_media(account, "image", now=timezone.now() - timedelta(days=3, seconds=1))
    assert api.send({"touser": OPENID, "msgtype": "image", "image": {"media_id": old.media_id}})["errcode"] == 40007


def test_media_of_another_account_is_40007(api, account, follower):
    other = OfficialAccount.objects.create(appid="wx_other", token="t", app_secret="s")
    image = wx.make_media(other, "image")
    assert api.send({"touser": OPENID, "msgtype": "image", "image": {"media_id": image.media_id}})["errcode"] == 40007


def test_a_refused_send_uses_no_quota(api, account, follower):
    for _ in range(3):
        assert api.send({"touser": OPENID, "msgtype": "image", "image": {"media_id": "gone"}})["errcode"] == 40007
    assert [api.text()["errcode"] for _ in range(6)] == [0] * 5 + [45047]


def test_miniprogram_cover_must_be_an_image(api, account, follower):
    thumb = wx.make_media(account, "thumb")
    image = wx.make_media(account, "image")
    page = {"title": "T", "appid": "wxmini", "pagepath": "pages/index/index"}
    body = {"touser": OPENID, "msgtype": "miniprogrampage"}
    assert api.send({**body, "miniprogrampage": {**page, "thumb_media_id": thumb.media_id}})["errcode"] == 40004
    assert api.send({**body, "miniprogrampage": {**page, "thumb_media_id": image.media_id}})["errcode"] == 0
    assert api.send({**body, "miniprogrampage": {"title": "T", "thumb_media_id": image.media_id}})["errcode"] == 47001


def test_a_bad_kf_account_is_65401(api, follower):
    body = {"touser": OPENID, "msgtype": "text", "text": {"content": "x"}, "customservice": {"kf_account": "nobody"}}
    assert api.send(body)["errcode"] == 65401
    body["customservice"] = {"kf_account": "agent1@oa_wechat_id"}
    assert api.send(body)["errcode"] == 0
    assert SandboxMessage.objects.get().kf_account == "agent1@oa_wechat_id"


def test_send_wants_post(api, follower):
    assert api.get(SEND).json()["errcode"] == 43002


def test_every_documented_shape_is_accepted(api, account, follower):
    for msgtype, payload in every_type(account).items():
        # Each send needs quota; the follower writes before each one.
        wx.act(account, OPENID, "text", content="再来", deliver=False)
        assert api.send({"touser": OPENID, "msgtype": msgtype, msgtype: payload}) == {"errcode": 0, "errmsg": "ok"}, (
            msgtype
        )
    assert [m.msgtype for m in wx.delivered(account)] == list(every_type(account))


def test_legacy_mpnews_needs_a_news_media_id(api, account, follower):
    image = wx.make_media(account, "image")
    assert api.send({"touser": OPENID, "msgtype": "mpnews", "mpnews": {"media_id": image.media_id}})["errcode"] == 40004
