"""With WECHAT_SANDBOX off, every /sandbox/ URL is a 404 (checked per request)."""

import pytest
from django.test import override_settings

from wechat.sandbox import follower as wx


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/",
        "/sandbox/cgi-bin/token?grant_type=client_credential",
        "/sandbox/cgi-bin/message/custom/send",
        "/sandbox/files/abc",
    ],
)
def test_every_sandbox_url_is_404_when_the_setting_is_off(client, account, path):
    with override_settings(WECHAT_SANDBOX=False):
        assert client.get(path).status_code == 404
        assert client.post(path, data=b"{}", content_type="application/json").status_code == 404


def test_the_api_answers_when_the_setting_is_on(client, account):
    with override_settings(WECHAT_SANDBOX=True):
        response = client.get("/sandbox/cgi-bin/token?grant_type=client_credential&appid=x&secret=y")
        assert response.status_code == 200
        assert response.json()["errcode"] == 40013


def test_unknown_api_paths_are_invalid_url(api, account):
    # §5: the wrong prefix (customservice under cgi-bin) answers 40066.
    assert api.get("/cgi-bin/customservice/kfsession/getsession", openid="x").json()["errcode"] == 40066


def test_media_files_are_served_only_while_the_media_lives(client, account):
    media = wx.make_media(account, "image")
    assert client.get(f"/sandbox/files/{media.media_id}").content.startswith(b"\x89PNG")
    assert client.get("/sandbox/files/unknown").status_code == 404
