"""/cgi-bin/token and /cgi-bin/stable_token behave like §1 says."""

import pytest
from django.utils import timezone

from tests.conftest import APPID
from tests.sandbox.conftest import SECRET
from wechat.sandbox.models import SandboxToken


def classic(anon_api, secret=SECRET, appid=APPID, grant_type="client_credential"):
    return anon_api.get("/cgi-bin/token", grant_type=grant_type, appid=appid, secret=secret).json()


def stable(anon_api, secret=SECRET, appid=APPID, force=False):
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force}
    return anon_api.post("/cgi-bin/stable_token", body).json()


def user_info(anon_api, token):
    return anon_api.get("/cgi-bin/user/info", access_token=token, openid="nobody").json()


def test_classic_token_is_a_long_opaque_string_valid_for_7200_seconds(anon_api, account):
    answer = classic(anon_api)
    assert answer["expires_in"] == 7200
    assert len(answer["access_token"]) >= 100
    assert set(answer) == {"access_token", "expires_in"}


def test_a_new_classic_token_retires_the_previous_one_after_the_overlap(anon_api, account, clock):
    first = classic(anon_api)["access_token"]
    second = classic(anon_api)["access_token"]
    assert first != second
    # Both work during the overlap of §1.1 …
    assert user_info(anon_api, first)["errcode"] == 40003
    assert user_info(anon_api, second)["errcode"] == 40003
    clock.advance(minutes=5, seconds=1)
    # … then the old one is "not latest".
    assert user_info(anon_api, first)["errcode"] == 40001
    assert user_info(anon_api, second)["errcode"] == 40003


def test_a_token_past_its_lifetime_is_expired(anon_api, account, clock):
    token = classic(anon_api)["access_token"]
    clock.advance(seconds=7200)
    answer = user_info(anon_api, token)
    assert answer["errcode"] == 42001
    assert answer["errmsg"].startswith("access_token expired")


def test_calls_without_a_token_or_with_garbage_are_refused(anon_api, account):
    assert anon_api.get("/cgi-bin/user/info", openid="x").json()["errcode"] == 41001
    assert user_info(anon_api, "not-a-token-we-issued")["errcode"] == 40014


def test_stable_token_repeats_inside_its_validity(anon_api, account, clock):
    first = stable(anon_api)
    clock.advance(minutes=30)
    again = stable(anon_api)
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == 7200 - 30 * 60


def test_stable_token_rolls_five_minutes_before_expiry_and_the_old_one_lives_on(anon_api, account, clock):
    first = stable(anon_api)["access_token"]
    clock.advance(seconds=7200 - 299)
    rolled = stable(anon_api)
    assert rolled["access_token"] != first
    assert rolled["expires_in"] == 7200
    assert user_info(anon_api, first)["errcode"] == 40003  # still valid until its own expiry
    clock.advance(seconds=300)
    assert user_info(anon_api, first)["errcode"] == 42001


def test_force_refresh_invalidates_the_stable_token_at_once(anon_api, account, clock):
    first = stable(anon_api)["access_token"]
    clock.advance(seconds=31)
    forced = stable(anon_api, force=True)["access_token"]
    assert forced != first
    assert user_info(anon_api, first)["errcode"] == 40001
    assert user_info(anon_api, forced)["errcode"] == 40003


def test_force_refresh_within_30_seconds_does_not_refresh(anon_api, account, clock):
    first = stable(anon_api)["access_token"]
    clock.advance(seconds=10)
    assert stable(anon_api, force=True)["access_token"] == first


def test_force_refresh_is_limited_to_20_a_day(anon_api, account, clock):
    clock.now = timezone.localtime(clock.now).replace(hour=1, minute=0)
    for _ in range(20):
        clock.advance(seconds=31)
        assert "access_token" in stable(anon_api, force=True)
    clock.advance(seconds=31)
    assert stable(anon_api, force=True)["errcode"] == 45009


def test_classic_and_stable_tokens_are_independent(anon_api, account, clock):
    stable_value = stable(anon_api)["access_token"]
    classic(anon_api)
    classic(anon_api)
    clock.advance(minutes=10)
    assert user_info(anon_api, stable_value)["errcode"] == 40003


def test_wrong_secret_is_40125_on_token_and_40001_on_stable_token(anon_api, account):
    assert classic(anon_api, secret="wrong")["errcode"] == 40125
    assert stable(anon_api, secret="wrong")["errcode"] == 40001
    assert not SandboxToken.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "errcode"),
    [
        ({"appid": ""}, 41002),
        ({"secret": ""}, 41004),
        ({"appid": "wx_unknown"}, 40013),
        ({"grant_type": "password"}, 40002),
    ],
)
def test_bad_credentials_get_their_errcodes(anon_api, account, kwargs, errcode):
    assert classic(anon_api, **kwargs)["errcode"] == errcode


def test_stable_token_wants_a_json_post(anon_api, account):
    assert anon_api.get("/cgi-bin/stable_token", appid=APPID).json()["errcode"] == 43002
    assert anon_api.post_raw("/cgi-bin/stable_token", b"appid=x", content_type="text/plain").json()["errcode"] == 47001


def test_errors_carry_a_request_id(anon_api, account):
    answer = classic(anon_api, secret="wrong")
    assert " rid: " in answer["errmsg"]
