"""The simulator page and its JSON endpoints (the browser test drives the whole page)."""

import json

import pytest

from tests.conftest import OPENID
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxFault, SandboxFollower, SandboxPush


def test_the_page_speaks_chinese_and_lists_the_accounts(client, account):
    response = client.get("/sandbox/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "粉丝模拟器" in html
    assert account.appid in html
    assert "故障注入" in html
    assert account.app_secret not in html and account.encoding_aes_key not in html


def test_the_state_shows_both_sides_of_the_chat_in_order(client, api, account, follower):
    api.text("您好，请问有什么可以帮您？")
    wx.act(account, OPENID, "click", key="CONTACT_KF", label="联系客服", deliver=False)
    state = client.get("/sandbox/sim/state", {"account": account.appid, "openid": OPENID}).json()
    timeline = [(item["direction"], item["type"]) for item in state["timeline"]]
    assert timeline == [("in", "text"), ("out", "text"), ("in", "click")]
    assert state["timeline"][1]["data"] == {"content": "您好，请问有什么可以帮您？"}
    assert state["follower"]["window"]["open"] is True
    assert state["follower"]["window"]["label"].endswith("left")
    assert [f["openid"] for f in state["followers"]] == [OPENID]
    assert state["calls"][0]["path"] == "/cgi-bin/message/custom/send"


def test_the_state_never_shows_a_token(client, api, account, token, follower):
    api.text()
    assert token not in client.get("/sandbox/sim/state", {"account": account.appid, "openid": OPENID}).content.decode()


def test_a_new_follower_gets_an_openid_and_does_not_follow_yet(client, account):
    created = client.post("/sandbox/sim/followers", {"account": account.appid, "nickname": "小明"}).json()
    assert len(created["openid"]) == 28
    follower = SandboxFollower.objects.get(openid=created["openid"])
    assert (follower.nickname, follower.subscribed) == ("小明", False)


def test_an_action_the_follower_cannot_do_is_a_clear_400(client, account):
    wx.create_follower(account, "o_new")
    response = client.post(
        "/sandbox/sim/act", {"account": account.appid, "openid": "o_new", "action": "text", "content": "hi"}
    )
    assert response.status_code == 400
    assert "关注" in response.json()["error"]
    assert client.post("/sandbox/sim/act", {"account": "wx_nope", "openid": "x", "action": "text"}).status_code == 404
    assert not SandboxPush.objects.exists()


def test_faults_can_be_armed_and_cleared_from_the_page(client, api, account, follower):
    body = {"kind": "busy", "count": 2, "endpoint": "/cgi-bin/message/custom/send"}
    armed = client.post("/sandbox/sim/faults", json.dumps(body), content_type="application/json").json()
    assert (armed["kind"], armed["remaining"], armed["label"]) == ("busy", 2, "-1 系统繁忙")
    assert api.text()["errcode"] == -1
    assert client.post("/sandbox/sim/faults/clear").json() == {"cleared": 1}
    assert api.text()["errcode"] == 0


@pytest.mark.parametrize(
    "body", [{"kind": "earthquake"}, {"kind": "latency", "delay_ms": 0}, {"kind": "busy", "count": "many"}]
)
def test_a_bad_fault_is_refused_with_a_reason(client, account, body):
    response = client.post("/sandbox/sim/faults", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("无法设置故障")
    assert not SandboxFault.objects.exists()


def test_the_page_is_available_in_english(client, account):
    html = client.get("/sandbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "follower simulator" in html.lower()
    assert "Fault injection" in html
    assert "-1 system busy" in html
    assert "粉丝模拟器" not in html


def test_times_are_beijing_time(client, account, follower):
    from django.utils import timezone

    push = wx.pushes(account, OPENID).get()
    state = client.get("/sandbox/sim/state", {"account": account.appid, "openid": OPENID}).json()
    beijing = timezone.localtime(push.created_at, timezone.get_fixed_timezone(8 * 60))
    assert state["timeline"][0]["time"] == beijing.strftime("%m-%d %H:%M:%S")
