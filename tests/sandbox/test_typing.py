"""/cgi-bin/message/custom/typing follows §4."""

from tests.conftest import OPENID
from wechat.sandbox import follower as wx

TYPING = "/cgi-bin/message/custom/typing"


def typing(api, command="Typing", openid=OPENID):
    return api.post(TYPING, {"touser": openid, "command": command}).json()["errcode"]


def test_typing_right_after_the_follower_wrote_is_accepted(api, follower):
    assert typing(api) == 0
    assert wx.get(follower.account, OPENID).typing_until is not None


def test_typing_again_while_typing_is_45081(api, follower):
    assert typing(api) == 0
    assert typing(api) == 45081


def test_typing_state_ends_after_15_seconds(api, account, follower):
    assert typing(api) == 0
    wx.age(account, OPENID, seconds=16)  # also moves the last exchange back…
    assert typing(api) == 0  # …which is still within 30 s


def test_without_an_exchange_in_the_last_30_seconds_it_is_45080(api, account, follower):
    wx.age(account, OPENID, seconds=31)
    assert typing(api) == 45080


def test_cancel_typing_and_sending_end_the_typing_state(api, follower):
    assert typing(api) == 0
    assert typing(api, "CancelTyping") == 0
    assert typing(api) == 0
    assert api.text()["errcode"] == 0
    assert typing(api) == 0  # the send was an exchange and ended the typing state


def test_a_bad_command_is_45072_and_an_unknown_openid_40003(api, follower):
    assert typing(api, "typing") == 45072
    assert typing(api, openid="o_nobody") == 40003
