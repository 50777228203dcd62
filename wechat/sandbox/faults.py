"""Fault injection for the fake API, shared by every process through the database.

A fault hits the next `count` matching calls (optionally one endpoint, one
account), then stays as a spent row so the simulator can show its hits.

Kinds (SandboxFault.Kind):

* ``latency``       sleep `delay_ms` before handling, then answer normally
* ``busy``          ``{"errcode": -1}`` (system busy, retryable, §10.2)
* ``daily_quota``   45009;  ``rate_limit`` 45011
* ``http_error``    an HTTP `http_status` (5xx) with an HTML body, no JSON
* ``reset``         TCP reset after the request arrived, before it is handled: needs a real server
                    (uvicorn), see `ResetMiddleware`; Django's test client
                    never consumes it
* ``read_timeout``  handle the call normally — a message IS recorded as
                    delivered — then hold the answer for `delay_ms`, longer
                    than the client's read timeout: the ambiguous case of §10.2
* ``token_expired`` the caller's access token expires now and the call gets
                    42001, as if its 7200 s had run out (§1.3)

Delays are capped at `MAX_DELAY_MS`: the sandbox only ever runs on loopback
and every wait must stay bounded.
"""

import asyncio
import logging
import socket
import struct
from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.db.models import Q

from config.logging import redact
from wechat.sandbox.models import SandboxCall, SandboxFault

log = logging.getLogger(__name__)

Kind = SandboxFault.Kind
MAX_DELAY_MS = 60_000
API_PREFIX = "/sandbox/cgi-bin/"
# Faults that replace the answer (at most one per call).
ANSWERING = (Kind.BUSY, Kind.DAILY_QUOTA, Kind.RATE_LIMIT, Kind.HTTP_ERROR, Kind.TOKEN_EXPIRED)


def inject(kind, *, count=1, endpoint="", account=None, delay_ms=0, http_status=503):
    """Arm a fault for the next `count` calls. `endpoint` like "/cgi-bin/message/custom/send"."""
    kind = Kind(kind)
    if count < 1:
        raise ValueError("count must be at least 1")
    if kind in (Kind.LATENCY, Kind.READ_TIMEOUT) and not 0 < delay_ms <= MAX_DELAY_MS:
        raise ValueError(f"delay_ms must be between 1 and {MAX_DELAY_MS}")
    if kind == Kind.HTTP_ERROR and not 500 <= http_status <= 599:
        raise ValueError("http_status must be a 5xx status")
    if endpoint and not endpoint.startswith("/cgi-bin/"):
        raise ValueError("endpoint must be a path like /cgi-bin/message/custom/send")
    return SandboxFault.objects.create(
        kind=kind,
        remaining=count,
        endpoint=endpoint,
        account=account,
        delay_ms=delay_ms,
        http_status=http_status,
    )


def clear(account=None):
    """Remove every fault (or those scoped to `account` and the unscoped ones)."""
    qs = SandboxFault.objects.all()
    if account is not None:
        qs = qs.filter(Q(account=account) | Q(account__isnull=True))
    return qs.delete()[0]


def pending():
    return list(SandboxFault.objects.filter(remaining__gt=0))


def armed(path, *, account=None, kinds=None):
    """The faults that could hit this call, oldest first: one query, usually empty."""
    qs = (
        SandboxFault.objects.filter(remaining__gt=0)
        .filter(Q(endpoint="") | Q(endpoint=path))
        .filter(Q(account__isnull=True) | Q(account=account))
        .order_by("id")
    )
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    return list(qs)


def take(path, *, account=None, kinds, candidates=None):
    """Consume one unit of the oldest armed fault among `kinds` matching this call.

    `candidates` (from `armed`) saves the query when the caller takes several
    kinds for one call. The conditional UPDATE makes the decrement atomic
    across processes: two calls racing for the last unit cannot both get it.
    """
    if candidates is None:
        candidates = armed(path, account=account, kinds=kinds)
    for fault in candidates:
        if fault.kind not in kinds:
            continue
        if _take_one(fault.pk):
            return fault
    return None


def _take_one(pk):
    """remaining - 1, hits + 1 if any remain: True if this call got the unit (one statement, every call)."""
    table = connection.ops.quote_name(SandboxFault._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET remaining = remaining - 1, hits = hits + 1 WHERE id = %s AND remaining > 0",  # noqa: S608
            [pk],
        )
        return cursor.rowcount == 1


@dataclass(frozen=True)
class Plan:
    """The faults one call takes: a delay before, an answer instead, a delay after."""

    latency: SandboxFault | None = None
    answer: SandboxFault | None = None
    late: SandboxFault | None = None

    @property
    def recorded(self):
        return self.answer or self.late or self.latency


def plan(path, *, account=None, token_call=False, candidates=None):
    """Take this call's faults (one query when none is armed; none when `candidates` is given)."""
    if candidates is None:
        candidates = armed(path, account=account)
    if not candidates:
        return Plan()
    # Token calls carry no access token to expire.
    answering = [k for k in ANSWERING if not (token_call and k == Kind.TOKEN_EXPIRED)]
    answer = take(path, kinds=answering, candidates=candidates)
    return Plan(
        latency=take(path, kinds=[Kind.LATENCY], candidates=candidates),
        answer=answer,
        late=None if answer else take(path, kinds=[Kind.READ_TIMEOUT], candidates=candidates),
    )


def delay_seconds(fault):
    return min(fault.delay_ms, MAX_DELAY_MS) / 1000


# --- under uvicorn: reset, and the delay before the answer -------------------------

# Where ResetMiddleware leaves the call's Plan for the view (`request.scope`).
SCOPE_KEY = "wechat.sandbox.fault_plan"


class ResetMiddleware:
    """ASGI middleware in front of the fake API: faults first, then the API view without Django's stack.

    A `reset` fault drops the TCP connection once the request has arrived,
    before it is handled. Wrap
    the outermost application (config/asgi.py) so `send` is still the
    server's own bound method: under uvicorn that is the protocol cycle, whose
    `transport` we abort after setting SO_LINGER to 0 — the kernel then sends a
    RST instead of a FIN, which is what a client sees when WeChat's front end
    drops a connection. With another server (no reachable transport) the
    fault answers an empty HTTP 502 instead, and says so in the log.

    The other faults are planned here too (`_plan_call`, one query when none
    is armed) and handed to the view in the scope. The delays — `latency`
    before the call, `read_timeout` after it — are `asyncio.sleep`s on the
    event loop: a delayed call holds no thread and no database connection
    while it waits, as a slow WeChat holds nothing of ours.

    Then the API view (`views.api`, the same code Django's test client
    reaches) runs in one thread hop, without the console's middleware chain:
    under ASGI each of those middlewares hands the request to a thread and
    back twice, the larger part of a sandbox call's CPU. None of them has a
    say over an API call (no cookies, no session, no CSRF — the view is
    csrf_exempt — no pages). Everything else under /sandbox/ goes through
    Django as usual.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(API_PREFIX):
            return await self.app(scope, receive, send)
        if not settings.WECHAT_SANDBOX or scope["path"] == API_PREFIX:
            return await self.app(scope, receive, send)
        reset, call_plan = await _plan_call(scope)
        if reset is None:
            if call_plan.latency is not None:
                await asyncio.sleep(delay_seconds(call_plan.latency))
            return await _serve({**scope, SCOPE_KEY: call_plan}, receive, send, call_plan)
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            # The whole request arrives first, then the reset: the client has
            # written every byte and cannot know whether WeChat acted on it
            # (§10.2) — not a race between its header and body writes.
            await _drain(receive)
            _abort(transport)
            # Let the server notice the lost connection before we return, so
            # it does not try to answer a 500 on the dead socket.
            for _ in range(10):
                if getattr(send.__self__, "disconnected", True):
                    break
                await asyncio.sleep(0)
            return None
        log.warning("sandbox reset fault: server transport not reachable, answering 502 instead")
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return None


async def _drain(receive):
    """Receive the rest of the request (its body) without handling it."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


_asgi = None


def _handler():
    """Django's ASGI handler, for reading the body, building the request and sending the response."""
    global _asgi
    if _asgi is None:
        from django.core.handlers.asgi import ASGIHandler

        _asgi = ASGIHandler()
    return _asgi


async def _serve(scope, receive, send, call_plan):
    from django.core.exceptions import RequestAborted

    handler = _handler()
    try:
        body_file = await handler.read_body(receive)
    except RequestAborted:
        return
    try:
        request, response = handler.create_request(scope, body_file)
        if request is not None:
            response = await _api(request)
        if call_plan.late is not None:
            # Answered and recorded; only the client's read deadline passes
            # before the answer leaves (the ambiguous case of §10.2).
            await asyncio.sleep(delay_seconds(call_plan.late))
        await handler.send_response(response, send)
    finally:
        body_file.close()


@sync_to_async(thread_sensitive=False)
def _api(request):
    from django.db import close_old_connections
    from django.http import HttpResponseServerError

    from wechat.sandbox import views

    # What Django's request_started / request_finished do for the database.
    close_old_connections()
    try:
        return views.api(request, request.path[len(API_PREFIX) :])
    except Exception:
        log.exception("sandbox API call %s failed", request.path)
        return HttpResponseServerError(b"<h1>Server Error (500)</h1>", content_type="text/html")
    finally:
        close_old_connections()


@sync_to_async(thread_sensitive=False)
def _plan_call(scope):
    """(the reset fault taken, None) or (None, the call's Plan): the faults of one API call."""
    from django.db import close_old_connections

    try:
        return _plan(scope)
    finally:
        close_old_connections()


def _plan(scope):
    from wechat.sandbox import platform, views

    path = scope["path"][len("/sandbox") :]
    # Every fault that could hit this path, whoever's it is: usually none, one query.
    candidates = list(
        SandboxFault.objects.filter(remaining__gt=0).filter(Q(endpoint="") | Q(endpoint=path)).order_by("id")
    )
    if not candidates:
        return None, Plan()
    query_string = scope.get("query_string", b"").decode("latin-1")
    endpoint = views.ENDPOINTS.get(path)
    token_call = endpoint is not None and not endpoint.needs_token
    account = None
    if any(f.account_id is not None for f in candidates):
        # Only an account-scoped fault needs to know whose token this is.
        token = (parse_qs(query_string).get("access_token") or [""])[0]
        account = platform.token_owner(token)
        mine = account.pk if account is not None else None
        candidates = [f for f in candidates if f.account_id is None or f.account_id == mine]
    fault = take(path, account=account, kinds=[Kind.RESET], candidates=candidates)
    if fault is not None:
        SandboxCall.objects.create(
            account=account,
            method=scope.get("method", ""),
            path=path,
            query=redact(query_string)[:1024],
            fault=Kind.RESET,
            errmsg="connection reset",
        )
        return fault, None
    return None, plan(path, account=account, token_call=token_call, candidates=candidates)


def _abort(transport):
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            # l_onoff=1, l_linger=0: close() discards the buffers and sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            log.warning("could not set SO_LINGER on the sandbox socket", exc_info=True)
    transport.abort()
