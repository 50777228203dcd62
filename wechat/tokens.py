"""The access token: one shared row per account, one refresher at a time (§1).

Every process and thread reads `AccessToken`; only a caller that finds it
missing, near expiry or refused takes the lock and fetches. Inside the lock the
row is read again, so waiters find the fresh token and do not fetch a second
one (each classic fetch invalidates the previous token, §1.1).

The lock: on PostgreSQL the row itself (`select_for_update`), held across the
fetch — other writers are not affected. On SQLite the only database lock is
the whole-file write lock (the IMMEDIATE transaction of settings); holding it
across an HTTP call would stall every writer for up to the read timeout, and
deadlock outright against a WeChat fake sharing the file. SQLite lives on one
host, so there the cross-process lock is an `flock` on a file beside the
database, and the row is written in a short IMMEDIATE transaction. A thread
lock in front spares one process's threads the stampede. The token's value
never reaches a log line, a page or an error.
"""

import contextlib
import fcntl
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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
    row = _stored(account.pk)
    if is_fresh(row, now):
        return row.value
    return refresh(account)


@dataclass(frozen=True)
class _Stored:
    value: str
    expires_at: datetime | None
    fetched_at: datetime | None


def _stored(account_id):
    """The shared row's value and times, read with plain SQL: this runs before every send."""
    table = connection.ops.quote_name(AccessToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value, expires_at, fetched_at FROM {table} WHERE account_id = %s", [account_id])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        return None
    return _Stored(row[0], _aware(row[1]), _aware(row[2]))


def _aware(value):
    """A datetime column as the ORM would give it (SQLite hands back text or naive UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def refresh(account, *, failed=None):
    """Fetch a new token under the lock — unless someone already replaced it.

    `failed`: the token WeChat just refused (§1.3). A stored token different
    from it was refreshed by someone else meanwhile and is returned as is.
    """
    with _local_lock(account.pk):
        AccessToken.objects.get_or_create(account_id=account.pk)
        if connection.vendor == "sqlite":
            with _file_lock(account.pk):
                row = AccessToken.objects.get(account_id=account.pk)
                current = _usable(row, failed)
                if current:
                    return current
                value, expires_in = _fetch(account)
                with transaction.atomic():
                    return _store(account, AccessToken.objects.get(account_id=account.pk), value, expires_in)
        failure = None
        with transaction.atomic():
            row = AccessToken.objects.select_for_update().get(account_id=account.pk)
            current = _usable(row, failed)
            if current:
                return current
            try:
                value, expires_in = _fetch(account)
            except errors.TokenUnavailable as exc:
                # Commit rather than roll back: the SendLog row of the failed
                # fetch must survive, and nothing else was written.
                failure = exc
            else:
                return _store(account, row, value, expires_in)
        raise failure


def _usable(row, failed):
    """The stored token if it may be used instead of fetching, else ""."""
    now = timezone.now()
    if failed is None:
        return row.value if is_fresh(row, now) else ""
    if row.value and row.value != failed and row.expires_at and now < row.expires_at:
        return row.value
    return ""


def _store(account, row, value, expires_in):
    row.value = value
    row.fetched_at = timezone.now()
    row.expires_at = row.fetched_at + timedelta(seconds=expires_in)
    row.fetch_count += 1
    row.save(update_fields=["value", "fetched_at", "expires_at", "fetch_count"])
    log.info("access token of %s refreshed (mode %s, expires in %ss)", account.appid, account.token_mode, expires_in)
    return value


@contextlib.contextmanager
def _file_lock(account_id):
    name = connection.settings_dict["NAME"]
    if not name or str(name) == ":memory:" or "mode=memory" in str(name):
        yield
        return
    with open(f"{name}.token-{account_id}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
