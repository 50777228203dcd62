"""The webhook's per-process account cache: fast, but never refuses on a stale row.

`wechat.webhook` keeps each active OfficialAccount for WECHAT_ACCOUNT_CACHE_SECONDS.
What must hold: a changed token or AES key works on the very next push, an
account deleted and re-created under the same appid stores on the new row, and
a deactivated account stops storing at once in the saving process and within
the cache time elsewhere.
"""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import post_push, text_xml
from wechat import webhook
from wechat.models import InboundMessage, OfficialAccount


def _push(client, msg_id, **kwargs):
    return post_push(client, text_xml(f"第{msg_id}条", msg_id=str(msg_id)), **kwargs)


def test_a_second_push_does_not_look_the_account_up_again(client, account):
    assert _push(client, 1).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _push(client, 2).status_code == 200
    assert not [q for q in queries.captured_queries if "wechat_officialaccount" in q["sql"]]
    assert InboundMessage.objects.count() == 2


def test_a_new_token_works_on_the_next_push(client, account):
    assert _push(client, 1).status_code == 200  # the old row is cached now
    # Changed by another process (a queryset update: no save hook runs here).
    OfficialAccount.objects.filter(pk=account.pk).update(token="rotated-token")
    assert _push(client, 2, token="rotated-token").status_code == 200
    assert _push(client, 3).status_code == 403  # the old token is refused
    assert set(InboundMessage.objects.values_list("msg_id", flat=True)) == {"1", "2"}


def test_a_refusal_on_a_cached_row_is_logged_once(client, account, caplog):
    assert _push(client, 1).status_code == 200
    with caplog.at_level(logging.WARNING, logger="wechat.webhook"):
        assert _push(client, 2, token="forged").status_code == 403
    refusals = [r for r in caplog.records if "webhook refused" in r.getMessage()]
    assert len(refusals) == 1


@pytest.mark.django_db(transaction=True)  # the stale foreign key only fails at a real COMMIT
def test_an_account_recreated_under_the_same_appid_stores_on_the_new_row(client, account):
    assert _push(client, 1).status_code == 200
    fields = {f.name: getattr(account, f.name) for f in OfficialAccount._meta.concrete_fields if not f.primary_key}
    OfficialAccount.objects.filter(pk=account.pk).delete()  # cascades: the follower and message go too
    recreated = OfficialAccount.objects.create(**fields)
    assert recreated.pk != account.pk
    assert _push(client, 2).status_code == 200
    assert list(InboundMessage.objects.values_list("account_id", "msg_id")) == [(recreated.pk, "2")]


def test_deactivation_applies_at_once_where_it_was_saved(client, account):
    assert _push(client, 1).status_code == 200
    account.is_active = False
    account.save()
    webhook.forget_account(account.appid)  # what the admin's save does
    assert _push(client, 2).status_code == 404


def test_deactivation_elsewhere_applies_within_the_cache_time(client, account, settings, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(webhook.time, "monotonic", lambda: clock[0])
    assert _push(client, 1).status_code == 200
    OfficialAccount.objects.filter(pk=account.pk).update(is_active=False)
    clock[0] += settings.WECHAT_ACCOUNT_CACHE_SECONDS + 0.1
    assert _push(client, 2).status_code == 404
    assert InboundMessage.objects.count() == 1


def test_a_zero_cache_time_looks_the_account_up_on_every_push(client, account, settings):
    settings.WECHAT_ACCOUNT_CACHE_SECONDS = 0
    assert _push(client, 1).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _push(client, 2).status_code == 200
    assert [q for q in queries.captured_queries if "wechat_officialaccount" in q["sql"]]
