"""Official accounts in the admin: secrets are write-only, keys rotate, the webhook URL is shown."""

import json
from datetime import timedelta

from django.utils import timezone

from tests.conftest import AES_KEY
from wechat.models import AccessToken, AuditLog, OfficialAccount

NEW_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
OLD_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
TOKEN_VALUE = "ACCESS-TOKEN-do-not-show-81f3a9"


def change_url(account):
    return f"/admin/wechat/officialaccount/{account.pk}/change/"


def form_data(account, **overrides):
    data = {
        "appid": account.appid,
        "name": account.name,
        "original_id": account.original_id,
        "crypto_mode": account.crypto_mode,
        "token_mode": account.token_mode,
        "is_active": "on",
        "new_app_secret": "",
        "new_token": "",
        "new_encoding_aes_key": "",
        "_save": "保存",
    }
    data.update(overrides)
    return data


def every_secret(account):
    return [account.app_secret, account.token, account.encoding_aes_key, account.previous_encoding_aes_key, TOKEN_VALUE]


def test_no_admin_page_shows_a_secret_or_the_access_token(admin_client, account):
    account.previous_encoding_aes_key = OLD_KEY
    account.save()
    AccessToken.objects.create(account=account, value=TOKEN_VALUE, expires_at=timezone.now())
    pages = [
        change_url(account),
        "/admin/wechat/officialaccount/",
        f"/admin/wechat/officialaccount/{account.pk}/history/",
        f"/admin/wechat/officialaccount/{account.pk}/delete/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for secret in every_secret(account):
            assert secret not in html, (page, secret[:4])
    # Only a masked hint, enough to recognise the secret.
    assert account.masked_secret in admin_client.get(change_url(account)).content.decode()


def test_the_access_token_has_no_admin_page(admin_client, account):
    assert admin_client.get("/admin/wechat/accesstoken/").status_code == 404


def test_a_failed_save_does_not_echo_the_secrets_typed_in(admin_client, account):
    response = admin_client.post(
        change_url(account),
        form_data(account, appid="", new_app_secret="brand-new-secret-value", new_encoding_aes_key=NEW_KEY),
    )
    assert response.status_code == 200  # the form came back with an error on appid
    html = response.content.decode()
    assert "brand-new-secret-value" not in html
    assert NEW_KEY not in html


def test_blank_secret_fields_keep_the_current_values(admin_client, account):
    response = admin_client.post(change_url(account), form_data(account, name="改名了"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "改名了"
    assert account.app_secret == "test-app-secret-value"
    assert account.token == "test-token"
    assert account.encoding_aes_key == AES_KEY


def test_a_new_secret_replaces_the_old_one_and_is_audited_by_name_only(admin_client, admin_user, account):
    response = admin_client.post(change_url(account), form_data(account, new_app_secret="another-secret-42"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.app_secret == "another-secret-42"
    entry = AuditLog.objects.get(action="account.change")
    assert entry.actor == admin_user
    assert entry.data["secrets_set"] == ["app_secret"]
    assert "another-secret-42" not in json.dumps(entry.data) + entry.summary


def test_a_new_secret_drops_the_stored_access_token(admin_client, account):
    AccessToken.objects.create(account=account, value=TOKEN_VALUE, expires_at=timezone.now() + timedelta(hours=1))
    admin_client.post(change_url(account), form_data(account, name="只改名"))
    assert AccessToken.objects.get().value == TOKEN_VALUE
    admin_client.post(change_url(account), form_data(account, new_app_secret="reset-on-the-platform"))
    assert AccessToken.objects.get().value == ""


def test_rotating_the_key_keeps_the_old_one_as_previous(admin_client, account):
    response = admin_client.post(change_url(account), form_data(account, new_encoding_aes_key=NEW_KEY), follow=True)
    account.refresh_from_db()
    assert account.encoding_aes_key == NEW_KEY
    assert account.previous_encoding_aes_key == AES_KEY
    assert account.aes_keys == [NEW_KEY, AES_KEY]
    assert "已轮换 EncodingAESKey" in response.content.decode()
    entry = AuditLog.objects.get(action="account.rotate_key")
    recorded = json.dumps(entry.data) + entry.summary
    assert NEW_KEY not in recorded and AES_KEY not in recorded
    assert entry.data["key_rotated"] is True


def test_the_previous_key_can_be_dropped_after_the_switch(admin_client, account):
    account.previous_encoding_aes_key = OLD_KEY
    account.save()
    admin_client.post(change_url(account), form_data(account, clear_previous_key="on"))
    account.refresh_from_db()
    assert account.previous_encoding_aes_key == ""
    assert account.encoding_aes_key == AES_KEY


def test_a_malformed_key_is_refused_with_a_clear_message_and_not_echoed(admin_client, account):
    bad = "short-key-not-43-characters"
    response = admin_client.post(change_url(account), form_data(account, new_encoding_aes_key=bad))
    assert response.status_code == 200
    html = response.content.decode()
    assert "43 个字符" in html
    assert bad not in html
    account.refresh_from_db()
    assert account.encoding_aes_key == AES_KEY
    assert account.previous_encoding_aes_key == ""


def test_safe_mode_needs_a_key(admin_client, account):
    account.encoding_aes_key = ""
    account.crypto_mode = OfficialAccount.CryptoMode.PLAIN
    account.save()
    response = admin_client.post(change_url(account), form_data(account, crypto_mode="safe"))
    assert response.status_code == 200
    assert "需要 EncodingAESKey" in response.content.decode()
    account.refresh_from_db()
    assert account.crypto_mode == "plain"


def test_the_page_shows_the_webhook_url_built_from_the_request_host(admin_client, account):
    html = admin_client.get(change_url(account), HTTP_HOST="localhost").content.decode()
    assert f"http://localhost/wechat/{account.appid}/" in html
    secure = admin_client.get(change_url(account), secure=True).content.decode()
    assert f"https://testserver/wechat/{account.appid}/" in secure


def test_an_admin_adds_an_account_and_the_creation_is_audited(admin_client, admin_user):
    response = admin_client.post(
        "/admin/wechat/officialaccount/add/",
        {
            "appid": "wx_new_account_0002",
            "name": "新公众号",
            "original_id": "gh_new",
            "crypto_mode": "safe",
            "token_mode": "stable",
            "is_active": "on",
            "new_app_secret": "fresh-secret-000",
            "new_token": "fresh-token",
            "new_encoding_aes_key": NEW_KEY,
            "_save": "保存",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = OfficialAccount.objects.get(appid="wx_new_account_0002")
    assert (account.app_secret, account.token, account.encoding_aes_key) == ("fresh-secret-000", "fresh-token", NEW_KEY)
    assert account.previous_encoding_aes_key == ""
    entry = AuditLog.objects.get(action="account.create")
    assert entry.actor == admin_user
    assert sorted(entry.data["secrets_set"]) == ["app_secret", "encoding_aes_key", "token"]
    assert "fresh-secret-000" not in json.dumps(entry.data)


def test_an_account_needs_a_token_when_it_is_created(admin_client):
    response = admin_client.post(
        "/admin/wechat/officialaccount/add/",
        {"appid": "wx_x", "crypto_mode": "plain", "token_mode": "stable", "is_active": "on", "_save": "保存"},
    )
    assert response.status_code == 200
    assert not OfficialAccount.objects.filter(appid="wx_x").exists()


def test_deleting_an_account_is_audited(admin_client, admin_user, account):
    response = admin_client.post(f"/admin/wechat/officialaccount/{account.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not OfficialAccount.objects.exists()
    entry = AuditLog.objects.get(action="account.delete")
    assert entry.actor == admin_user and entry.data == {"appid": "wx_test_appid_0001"}


def test_saving_an_account_drops_the_webhooks_cached_copy(admin_client, account):
    from wechat import webhook

    webhook._account(account.appid)
    assert account.appid in webhook._accounts
    response = admin_client.post(change_url(account), form_data(account, is_active=""))
    assert response.status_code == 302
    assert account.appid not in webhook._accounts
    account.refresh_from_db()
    assert account.is_active is False
