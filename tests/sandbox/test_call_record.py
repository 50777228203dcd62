"""Every call is recorded with its exact body and answer, secrets redacted."""

from tests.conftest import OPENID
from wechat.sandbox import follower as wx

SEND = "/cgi-bin/message/custom/send"


def test_a_send_is_recorded_with_its_exact_payload(api, account, follower):
    api.text("你好 😀")
    call = wx.calls(SEND).get()
    assert call.method == "POST"
    assert call.json == {"touser": OPENID, "msgtype": "text", "text": {"content": "你好 😀"}}
    assert (call.http_status, call.errcode, call.errmsg) == (200, 0, "ok")
    assert call.account == account


def test_the_access_token_never_reaches_the_record(api, token, follower):
    api.text()
    call = wx.calls(SEND).get()
    assert token not in call.query
    assert "access_token=***" in call.query


def test_token_calls_hide_the_secret_and_the_token(anon_api, account):
    answer = anon_api.get(
        "/cgi-bin/token", grant_type="client_credential", appid=account.appid, secret=account.app_secret
    ).json()
    body = {"grant_type": "client_credential", "appid": account.appid, "secret": account.app_secret}
    stable = anon_api.post("/cgi-bin/stable_token", body).json()
    for call in wx.calls():
        text = call.query + call.body + call.response
        assert account.app_secret not in text
        assert answer["access_token"] not in text and stable["access_token"] not in text
    assert wx.calls("/cgi-bin/token").get().account == account


def test_errors_are_recorded_with_their_errcode(api, follower):
    api.text(openid="o_nobody")
    call = wx.calls(SEND).get()
    assert call.errcode == 40003
    assert call.errmsg.startswith("invalid openid")


def test_binary_answers_are_summarised(api, account):
    media = wx.make_media(account, "image")
    api.get("/cgi-bin/media/get", media_id=media.media_id)
    assert wx.calls("/cgi-bin/media/get").get().response == f"<{media.size} bytes image/png>"
