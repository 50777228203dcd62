"""Faults armed in the database hit the next N matching calls, then stop."""

import pytest

from tests.conftest import OPENID
from wechat.models import OfficialAccount
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxFault

SEND = "/cgi-bin/message/custom/send"


@pytest.mark.parametrize(("kind", "errcode"), [("busy", -1), ("daily_quota", 45009), ("rate_limit", 45011)])
def test_an_errcode_fault_answers_instead_of_the_platform(api, account, follower, kind, errcode):
    wx.inject_fault(kind, count=2, endpoint=SEND)
    assert [api.text()["errcode"] for _ in range(3)] == [errcode, errcode, 0]
    # Faulted calls never reached the platform: one message, one unit of quota.
    assert wx.delivered(account).count() == 1
    assert wx.get(account, OPENID).long_used == 1


def test_an_http_fault_answers_a_5xx_without_json(api, follower):
    wx.inject_fault("http_error", http_status=502)
    response = api.post(SEND, {"touser": OPENID, "msgtype": "text", "text": {"content": "x"}})
    assert response.status_code == 502
    assert response["Content-Type"].startswith("text/html")
    assert not wx.delivered().exists()


def test_a_fault_scoped_to_an_endpoint_leaves_others_alone(api, follower):
    wx.inject_fault("busy", endpoint="/cgi-bin/message/custom/typing")
    assert api.text()["errcode"] == 0
    assert api.post("/cgi-bin/message/custom/typing", {"touser": OPENID, "command": "Typing"}).json()["errcode"] == -1


def test_a_fault_scoped_to_an_account_leaves_other_accounts_alone(api, account, follower, client):
    other = OfficialAccount.objects.create(appid="wx_other", token="t", app_secret="s")
    wx.inject_fault("busy", account=other)
    assert api.text()["errcode"] == 0
    other_api = type(api)(client, wx.issue_token(other))
    assert other_api.get("/cgi-bin/user/info", openid="x").json()["errcode"] == -1


def test_forced_token_expiry_answers_42001_and_a_fresh_token_works(api, anon_api, account, follower):
    wx.inject_fault("token_expired")
    assert api.text()["errcode"] == 42001
    assert api.text()["errcode"] == 42001  # the token really is expired now
    body = {"grant_type": "client_credential", "appid": account.appid, "secret": account.app_secret}
    api.token = anon_api.post("/cgi-bin/stable_token", body).json()["access_token"]
    assert api.text()["errcode"] == 0


def test_token_calls_are_not_hit_by_token_expiry(anon_api, account):
    wx.inject_fault("token_expired")
    body = {"grant_type": "client_credential", "appid": account.appid, "secret": account.app_secret}
    assert "access_token" in anon_api.post("/cgi-bin/stable_token", body).json()
    assert SandboxFault.objects.get().remaining == 1


def test_latency_delays_then_answers_normally(api, follower):
    wx.inject_fault("latency", delay_ms=20)
    assert api.text()["errcode"] == 0
    assert wx.calls(SEND).get().fault == "latency"


def test_read_timeout_records_the_message_before_the_late_answer(api, account, follower):
    wx.inject_fault("read_timeout", delay_ms=20)
    assert api.text("会超时")["errcode"] == 0
    assert wx.delivered(account).get().payload == {"content": "会超时"}
    call = wx.calls(SEND).get()
    assert (call.fault, call.errcode) == ("read_timeout", 0)


def test_clear_removes_every_fault(api, follower):
    wx.inject_fault("busy", count=5)
    assert wx.clear_faults() == 1
    assert api.text()["errcode"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "nonsense"},
        {"kind": "busy", "count": 0},
        {"kind": "latency"},
        {"kind": "http_error", "http_status": 404},
        {"kind": "busy", "endpoint": "message/custom/send"},
    ],
)
def test_a_malformed_fault_is_refused_clearly(account, kwargs):
    with pytest.raises(ValueError):
        wx.inject_fault(**kwargs)
