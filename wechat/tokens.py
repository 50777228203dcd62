"""The access token: one shared row per account, one refresher at a time (§1).

Every process and thread reads `AccessToken`; only a caller that finds it
missing, near expiry or refused takes the lock and fetches. The lock is the row
itself — `select_for_update` on PostgreSQL, and on SQLite the IMMEDIATE
transaction (settings) which holds the database write lock from BEGIN — and
inside it the row is read again, so waiters find the fresh token and do not
fetch a second one (each classic fetch invalidates the previous token, §1.1).
A thread lock in front spares the database the stampede of one process's
threads. The token's value never reaches a log line, a page or an error.
"""

import logging
import threading
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from wechat import client, errors
from wechat.models import AccessToken, OfficialAccount

log = logging.getLogger("wechat.tokens")

# Refresh ahead of expiry. Stable tokens roll ~5 min before they end and any
# returned token has expires_in >= 300 (§1.2), so asking inside the last 4 min
# yields the next token rather than the same one again.
REFRESH_MARGIN = timedelta(seconds=240)
# …but never more often than this, whatever expires_in says.
MIN_REFETCH_INTERVAL = timedelta(seconds=30)

_locks = {}
_locks_guard = threading.Lock()


def _local_lock(account_id):
    with _locks_guard:
        return _locks.setdefault(account_id, threading.Lock())


def is_fresh(row, now):
    if row is None or not row.value or row.expires_at is None or now >= row.expires_at:
        return False
    if now < row.expires_at - REFRESH_MARGIN:
        return True
    return row.fetched_at is not None and now < row.fetched_at + MIN_REFETCH_INTERVAL


def get(account, *, now=None):
    """A valid token for `account`, fetched only if the shared one is missing or near expiry."""
    now = now or timezone.now()
    row = AccessToken.objects.filter(account_id=account.pk).only("value", "expires_at", "fetched_at").first()
    if is_fresh(row, now):
        return row.value
    return refresh(account)


def refresh(account, *, failed=None):
    """Fetch a new token under the lock — unless someone already replaced it.

    `failed`: the token WeChat just refused (§1.3). A stored token different
    from it was refreshed by someone else meanwhile and is returned as is.
    """
    with _local_lock(account.pk):
        AccessToken.objects.get_or_create(account_id=account.pk)
        with transaction.atomic():
            row = AccessToken.objects.select_for_update().get(account_id=account.pk)
            now = timezone.now()
            if failed is None and is_fresh(row, now):
                return row.value
            if failed is not None and row.value and row.value != failed and row.expires_at and now < row.expires_at:
                return row.value
            value, expires_in = _fetch(account)
            row.value = value
            row.fetched_at = timezone.now()
            row.expires_at = row.fetched_at + timedelta(seconds=expires_in)
            row.fetch_count += 1
            row.save(update_fields=["value", "fetched_at", "expires_at", "fetch_count"])
            log.info(
                "access token of %s refreshed (mode %s, expires in %ss)", account.appid, account.token_mode, expires_in
            )
            return value


def invalidate(account):
    """Forget the stored token (e.g. after the secret was changed)."""
    AccessToken.objects.filter(account_id=account.pk).update(value="", expires_at=None)


def _fetch(account):
    """Ask WeChat for a token: stable_token by default (§1.2), classic /cgi-bin/token on request (§1.1)."""
    if not account.app_secret:
        raise errors.TokenUnavailable(errors.APIError(41004))
    try:
        if account.token_mode == OfficialAccount.TokenMode.CLASSIC:
            reply = client.request(
                account,
                "GET",
                "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": account.appid, "secret": account.app_secret},
                log_body=False,
            )
        else:
            reply = client.request(
                account,
                "POST",
                "/cgi-bin/stable_token",
                body={
                    "grant_type": "client_credential",
                    "appid": account.appid,
                    "secret": account.app_secret,
                    "force_refresh": False,
                },
                log_body=False,
            )
    except errors.WeChatError as exc:
        raise errors.TokenUnavailable(exc) from None
    value = reply.data.get("access_token")
    try:
        # §1.1: read expires_in, never hard-code 7200.
        expires_in = int(reply.data.get("expires_in"))
    except (TypeError, ValueError):
        expires_in = 0
    if not isinstance(value, str) or not value or expires_in <= 0:
        raise errors.TokenUnavailable(errors.BadResponse(reply.status))
    return value, expires_in
