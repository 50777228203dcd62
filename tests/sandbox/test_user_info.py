"""/cgi-bin/user/info answers the slimmed-down profile of §9."""

from wechat.sandbox import follower as wx


def test_a_follower_from_a_qr_code(api, account):
    wx.act(account, "o_qr", "subscribe", scene="98765", deliver=False)
    info = api.get("/cgi-bin/user/info", openid="o_qr", lang="zh_CN").json()
    assert info["subscribe"] == 1
    assert info["openid"] == "o_qr"
    assert info["subscribe_scene"] == "ADD_SCENE_QR_CODE"
    assert info["qr_scene"] == 98765
    assert "nickname" not in info and "headimgurl" not in info


def test_someone_who_unfollowed_has_subscribe_0_and_nothing_else(api, account):
    wx.act(account, "o_gone", "subscribe", deliver=False)
    wx.act(account, "o_gone", "unsubscribe", deliver=False)
    assert api.get("/cgi-bin/user/info", openid="o_gone").json() == {"subscribe": 0, "openid": "o_gone"}


def test_an_unknown_openid_is_40003(api, account):
    assert api.get("/cgi-bin/user/info", openid="o_never").json()["errcode"] == 40003
