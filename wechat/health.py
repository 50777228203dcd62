"""/healthz: the database, the channel layer and the task queue, each named, in bounded time.

A load balancer asks this every few seconds, and it asks most when something is
wrong. So every probe runs at once under one deadline (`HEALTHZ_TIMEOUT`): a
Redis or PostgreSQL that does not answer costs that much, never the kernel's
TCP timeout. The blocking probes run on a few threads of their own, each with a
connection it gives back when done (from the process's pool on PostgreSQL), so a
stuck probe holds neither the event loop nor a connection a request is using,
and it ends by itself (connect and pool timeouts in settings).

The report names the failing part and the exception's class and message, with
anything that looks like a credential redacted: exceptions from database and
Redis drivers can quote a DSN or URL with a password in it.
"""

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.utils import timezone

from config.logging import redact

DB_ALIAS = "default"
# Threads of the probes' own: a probe stuck on a database that does not answer
# (until its connect timeout) must not take a thread from the event loop's
# default executor, which asyncio also uses for DNS look-ups.
_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def scrub(text):
    """The error as reported: passwords in URLs and DSNs, tokens and keys hidden (config.logging.redact)."""
    return redact(str(text))


# --- probes -----------------------------------------------------------------------


def _database():
    """SELECT 1 on a connection of its own, given back afterwards (to the pool, when there is one)."""
    conn = connections.create_connection(DB_ALIAS)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        conn.close()
    return {"vendor": conn.vendor}


def _queue():
    """The task backend: for the database backend, its table answers; backlog is reported, not judged.

    A backlog with no worker running is a worker problem, not this process's:
    answering 503 for it would take every web process out of the balancer.
    """
    backend = settings.TASKS["default"]["BACKEND"]
    if backend != "django_tasks_db.DatabaseBackend":
        return {"backend": backend, "probe": "none"}
    from django_tasks_db.models import DBTaskResult

    try:
        ready = DBTaskResult.objects.ready()
        oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
        count = ready.order_by()[:10000].count()
    finally:
        connections[DB_ALIAS].close()
    report = {"backend": backend, "ready": count}
    if oldest is not None:
        report["oldest_ready_seconds"] = round((timezone.now() - oldest).total_seconds(), 1)
    return report


async def _channel_layer():
    """A round trip through the layer this process uses for live updates: new channel, send, receive."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("health.")
    probe = {"type": "health.probe", "id": uuid.uuid4().hex}
    await layer.send(channel, probe)
    got = await layer.receive(channel)
    if got.get("id") != probe["id"]:
        raise RuntimeError("the channel layer returned a different message")
    return {"backend": type(layer).__name__}


def _in_thread(probe):
    return lambda: asyncio.get_running_loop().run_in_executor(_EXECUTOR, probe)


PROBES = {
    "database": _in_thread(_database),
    "channel_layer": _channel_layer,
    "queue": _in_thread(_queue),
}


# --- the report -------------------------------------------------------------------


async def _run(name, probe, timeout):
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(probe(), timeout)
        state = {"status": "ok", **(detail or {})}
    except TimeoutError:
        state = {"status": "error", "error": f"no answer within {timeout:g} s"}
    except Exception as exc:  # the report names the failing part
        state = {"status": "error", "error": scrub(f"{type(exc).__name__}: {exc}")[:300]}
    state["ms"] = round((time.monotonic() - started) * 1000)
    return name, state


async def acheck(*, timeout=None, probes=None):
    """Run every probe at once; {"ok", "failing": [names], "parts": {name: {"status", …}}}."""
    timeout = float(timeout if timeout is not None else settings.HEALTHZ_TIMEOUT)
    probes = probes or PROBES
    results = await asyncio.gather(*(_run(name, probe, timeout) for name, probe in probes.items()))
    parts = dict(results)
    failing = [name for name, state in parts.items() if state["status"] != "ok"]
    return {"ok": not failing, "failing": failing, "parts": parts}
