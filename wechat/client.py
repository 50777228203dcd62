"""The one HTTP seam to the WeChat API (../shared/wechat-api.md §1, §2, §4, §8, §10).

One `requests.Session` per process, shared by the worker threads (its
connection pool is sized for them), explicit connect/read timeouts, the base
URL from settings. Every HTTP attempt leaves a `SendLog` row; every answer is
turned into a value or one of the typed exceptions of `wechat.errors`, which
say whether a retry helps. The access token travels only in the query string
of the request itself: endpoints in logs, SendLog rows and exception texts are
redacted, and requests' own exceptions (whose text contains the URL) are never
re-raised or chained.
"""

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode
from urllib.request import getproxies

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from config.logging import redact
from wechat import errors

log = logging.getLogger("wechat.client")

# Set once urllib3 has written the whole request to the socket (see
# _TrackingConnection): a failure before that point cannot have been acted on.
_written = threading.local()


class _TrackingConnection(HTTPConnection):
    def request(self, *args, **kwargs):
        super().request(*args, **kwargs)
        _written.done = True


class _TrackingHTTPSConnection(HTTPSConnection):
    def request(self, *args, **kwargs):
        super().request(*args, **kwargs)
        _written.done = True


class _Pool(HTTPConnectionPool):
    ConnectionCls = _TrackingConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackingHTTPSConnection


_RID = re.compile(r"(?:rid:\s*|hint:\s*\[)([0-9A-Za-z_\-]+)")
_session = None
_session_pid = None
_session_lock = threading.Lock()


_pool_size = None


def configure(*, pool_size):
    """Size the connection pool for this many concurrent callers (the send worker's threads)."""
    global _pool_size, _session
    with _session_lock:
        _pool_size = pool_size
        _session = None


def session():
    """The process-wide Session (rebuilt after a fork: sockets must not be shared)."""
    global _session, _session_pid
    if _session is None or _session_pid != os.getpid():
        with _session_lock:
            if _session is None or _session_pid != os.getpid():
                s = requests.Session()
                # More connections than threads would only idle; fewer would
                # make urllib3 open and discard one per call.
                size = _pool_size or max(16, int(getattr(settings, "SEND_WORKER_THREADS", 8)) * 2)
                # max_retries=0: urllib3 must never replay a request on its own,
                # a replayed custom/send could deliver twice (§10.2).
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=0)
                adapter.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                s.headers["User-Agent"] = "kefu-console"
                # Proxy settings are read from the environment once, here:
                # with trust_env requests re-reads os.environ on every call,
                # a measurable share of a send's CPU.
                s.proxies.update(getproxies())
                s.trust_env = False
                _session, _session_pid = s, os.getpid()
    return _session


_HOST = socket.gethostname()


def worker_name():
    return f"{_HOST}:{os.getpid()}:{threading.current_thread().name}"[:128]


def parse_rid(errmsg):
    """The request id WeChat appends to errmsg (`rid: …` or the older `hint: [...]`)."""
    match = _RID.search(errmsg or "")
    return match.group(1)[:64] if match else ""


def endpoint(path, params=None):
    """What logs may show of a request: path and query, secrets hidden."""
    if not params:
        return path
    return redact(f"{path}?{urlencode(params)}")


@dataclass
class Reply:
    status: int
    data: dict | None  # parsed JSON, or None for a binary body
    content: bytes
    content_type: str
    headers: dict


def request(
    account,
    method,
    path,
    *,
    params=None,
    body=None,
    files=None,
    form=None,
    outbound_id=None,
    attempt=1,
    log_body=True,
    binary_ok=False,
    url=None,
):
    """One HTTP attempt, logged. Returns a Reply whose errcode is 0 (or binary), or raises.

    `body` is bytes already serialized once (builders.serialize) or a dict for
    API calls that are not messages. `url` overrides the base (used for the
    `video_url` download of §8.1, which is not an API path).
    """
    params = dict(params or {})
    target = url or f"{settings.WECHAT_API_BASE}{path}"
    shown = endpoint(path if url is None else _strip_query(url), params)
    headers = {}
    data = None
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if body is not None:
        data = body
        headers["Content-Type"] = "application/json; charset=utf-8"
    elif form is not None:
        data = form
    logged_body = ""
    if log_body and body is not None:
        logged_body = redact(body.decode("utf-8", "replace"))
    started = time.monotonic()
    entry = {
        "account_id": getattr(account, "pk", None),
        "outbound_id": outbound_id,
        "endpoint": shown[:512],
        "request_body": logged_body,
        "attempt": attempt,
        "worker": worker_name(),
    }
    _written.done = False
    try:
        response = session().request(
            method,
            target,
            params=params or None,
            data=data,
            files=files,
            headers=headers,
            timeout=(settings.WECHAT_CONNECT_TIMEOUT, settings.WECHAT_READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        failure = _transport_failure(exc)
        _write_log(entry, started, outcome=type(failure).__name__.lower(), errmsg=failure.detail[:512])
        log.warning("wechat %s %s failed: %s (%s)", method, shown, failure, failure.detail)
        raise failure from None

    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    content = response.content
    if status >= 500:
        _write_log(entry, started, http_status=status, outcome="server_error")
        log.warning("wechat %s %s answered HTTP %s", method, shown, status)
        raise errors.ServerError(status)
    parsed = None
    if "json" in content_type or "text/plain" in content_type or content[:1] == b"{":
        try:
            parsed = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parsed = None
    if parsed is None and not (binary_ok and status == 200):
        _write_log(entry, started, http_status=status, outcome="bad_response")
        raise errors.BadResponse(status)
    if parsed is not None and not isinstance(parsed, dict):
        _write_log(entry, started, http_status=status, outcome="bad_response")
        raise errors.BadResponse(status)

    errcode = int(parsed.get("errcode", 0) or 0) if parsed is not None else 0
    errmsg = str(parsed.get("errmsg", "")) if parsed is not None else ""
    rid = parse_rid(errmsg)
    if errcode == 0 and parsed is not None and status >= 400:
        _write_log(entry, started, http_status=status, errmsg=errmsg, rid=rid, outcome="bad_response")
        raise errors.BadResponse(status)
    _write_log(
        entry,
        started,
        http_status=status,
        errcode=errcode if parsed is not None else None,
        errmsg=redact(errmsg)[:512],
        rid=rid,
        outcome="ok" if errcode == 0 else "error",
    )
    if errcode != 0:
        log.info("wechat %s %s → errcode %s %s", method, shown, errcode, redact(errmsg))
        raise errors.APIError(errcode, redact(errmsg), rid)
    log.debug("wechat %s %s → ok", method, shown)
    return Reply(status, parsed, content, content_type, dict(response.headers))


def call(account, method, path, *, params=None, **kwargs):
    """An API call with the account's access token; on a bad token (§1.3) refresh once and replay once."""
    from wechat import tokens

    token = tokens.get(account)
    try:
        return request(account, method, path, params={**(params or {}), "access_token": token}, **kwargs)
    except errors.APIError as exc:
        if not exc.token_invalid:
            raise
        log.info("access token of %s refused (errcode %s); refreshing once", account.appid, exc.errcode)
        fresh = tokens.refresh(account, failed=token)
    return request(account, method, path, params={**(params or {}), "access_token": fresh}, **kwargs)


# --- the calls the console makes ------------------------------------------------


def send_custom(account, body_bytes, *, outbound_id=None, attempt=1):
    """POST /cgi-bin/message/custom/send (§2) with a body serialized once by builders.serialize."""
    return call(
        account, "POST", "/cgi-bin/message/custom/send", body=body_bytes, outbound_id=outbound_id, attempt=attempt
    )


def typing(account, openid, command="Typing"):
    """POST /cgi-bin/message/custom/typing (§4)."""
    return call(account, "POST", "/cgi-bin/message/custom/typing", body={"touser": openid, "command": command})


def _strip_query(url):
    # A video_url carries its own signed query; keep it out of logs.
    return url.split("?", 1)[0]


def _write_log(entry, started, **fields):
    from django.db import transaction

    from wechat import rawsql
    from wechat.models import SendLog

    latency = int((time.monotonic() - started) * 1000)
    try:
        # One INSERT without the ORM's compiler: this runs once per attempt
        # and `objects.create` was a sixth of the send worker's CPU. As the
        # ORM does, a failed INSERT inside atomic() dooms that transaction.
        with transaction.mark_for_rollback_on_error():
            rawsql.insert(SendLog(**entry, latency_ms=latency, **fields))
    except Exception:  # the attempt itself matters more than its log row
        log.warning("could not write SendLog for %s", entry.get("endpoint"), exc_info=True)


def _transport_failure(exc):
    """NotSent when the request provably never left whole (refused, connect or write failed), else Ambiguous.

    §10.2: there is no idempotency key on custom/send, so only a request that
    was never completely written may be retried. A reset or timeout after the
    last byte was written — even one the server raised before reading it —
    looks the same from here as one raised after WeChat acted on it.
    """
    detail = redact(type(exc).__name__)
    if isinstance(exc, requests.ConnectTimeout) or not getattr(_written, "done", False):
        return errors.NotSent(detail)
    return errors.Ambiguous(detail)
