"""The webhook's fast path: `/wechat/<appid>/` as a plain ASGI application.

Django's ASGI handler runs the middleware stack with sync↔async thread hops on
every request, which costs several times the webhook's own work under uvicorn
(docs/benchmarks.md). WeChat pushes need none of that middleware — no session,
no CSRF, no locale — so this app reads the body itself and calls the same
`wechat.webhook.handle` as the Django view (wechat.views.webhook), with the
same arguments, and answers the same status and body. config/asgi.py routes
the path here (`fast_path`) ahead of Channels' router and the Django app: a
Channels consumer instance per request cost about a third of a push.

Differences that are deliberate: the body is read only up to the 64 KB limit
(Django would first spool a 10 MB body to disk), and the headers that the
middleware would add to a plain-text answer are set here directly.
"""

import asyncio
import contextvars
import functools
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host

from config.logging import clean_request_id, request_id_var
from wechat import webhook

log = logging.getLogger("wechat.webhook")

# What SecurityMiddleware, XFrameOptionsMiddleware and RequestIdMiddleware add
# to the Django view's answer (the request id is appended per request).
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


_PATH = re.compile(r"^/wechat/([^/]+)/$")
_PLAIN = "text/plain; charset=utf-8"


def fast_path(app):
    """ASGI app: `/wechat/<appid>/` to `webhook_app`, everything else to `app`."""

    async def route(scope, receive, send):
        if scope["type"] == "http":
            match = _PATH.match(scope.get("path", ""))
            if match:
                return await webhook_app(scope, receive, send, appid=match.group(1))
        return await app(scope, receive, send)

    return route


async def webhook_app(scope, receive, send, *, appid):
    """One push, as a plain ASGI application (no consumer class, no channel layer)."""
    content_length = _content_length(scope)
    body = await _read_body(receive, too_large=content_length > settings.WECHAT_MAX_BODY_BYTES)
    if body is None:
        return  # the client went away before sending its body
    rid = clean_request_id(scope_header(scope, b"x-request-id"))
    token = request_id_var.set(rid)
    try:
        status, payload, content_type = await _answer(scope, appid, body, content_length)
    finally:
        request_id_var.reset(token)
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(payload)).encode()),
        *_HEADERS,
        (b"x-request-id", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive, *, too_large):
    """The body up to one byte past the limit, so a hostile 10 MB body costs 64 KB of memory.

    `handle` still sees more than the limit and refuses with 413. None if the
    client disconnected first.
    """
    limit = settings.WECHAT_MAX_BODY_BYTES
    chunks, received = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk and not too_large:
            room = limit + 1 - received
            chunks.append(chunk[:room])
            received += min(len(chunk), room)
            too_large = received > limit
        if too_large or not message.get("more_body"):
            return b"".join(chunks)


async def _answer(scope, appid, body, content_length):
    if not _host_allowed(scope):
        # What Django's CommonMiddleware does for a Host not in ALLOWED_HOSTS.
        log.warning("webhook refused 400: host not allowed")
        return 400, b"bad request", _PLAIN
    method = scope["method"]
    if content_length > settings.WECHAT_MAX_BODY_BYTES or method != "POST":
        body = b""  # the view does not read these bodies either
    query = QueryDict(scope.get("query_string", b"").decode("utf-8", "replace"))
    try:
        answer = await _handle(appid, method, query, body, content_length=content_length)
    except Exception:
        # Nothing was stored (the transaction rolled back); a 500 makes
        # WeChat retry the push (§6.5), exactly like the Django view.
        log.exception("webhook failed appid=%s", appid)
        return 500, b"server error", _PLAIN
    return answer.status, answer.body, answer.content_type


# Pushes are stored on a small pool of threads of their own, each keeping its
# database connection from one push to the next: one push's round trips overlap
# with another's Python, and no push pays a pool checkout plus the pool's
# health-check round trip (Django's `database_sync_to_async` closes the
# connection after every call, which with CONN_MAX_AGE=0 and a pool is exactly
# that). A connection that failed is closed, so the thread's next push
# reconnects. `handle` shares no state between requests; the de-duplication is
# the database's unique constraint, which holds across threads and processes.
_executor = None
_executor_guard = threading.Lock()


def _threads():
    global _executor
    if _executor is None:  # the lock only for the first push, not for every one
        with _executor_guard:
            if _executor is None:
                _executor = ThreadPoolExecutor(settings.WEBHOOK_THREADS, thread_name_prefix="webhook")
    return _executor


async def _handle(appid, method, query, body, *, content_length):
    call = functools.partial(_handle_sync, appid, method, query, body, content_length=content_length)
    context = contextvars.copy_context()  # the request id reaches the log lines of the thread
    return await asyncio.get_running_loop().run_in_executor(_threads(), context.run, call)


def _handle_sync(appid, method, query, body, *, content_length):
    try:
        return webhook.handle(appid, method, query, body, content_length=content_length)
    finally:
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()


def scope_header(scope, name):
    """The value of header `name` (lower-case bytes) of an ASGI scope, or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _content_length(scope):
    try:
        return max(int(scope_header(scope, b"content-length") or 0), 0)
    except ValueError:
        return 0


def _host_allowed(scope):
    host = scope_header(scope, b"host")
    if host is None:
        server = scope.get("server")
        host = server[0] if server else ""
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)
