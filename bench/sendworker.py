"""Benchmark 3: one send worker process against the sandbox with 100 ms latency.

Followers write first (through the sandbox's follower API, so both the
sandbox's window book and ours open), then five replies per follower are
queued through `outbound.queue_message` — the gate, the ledger, the task.
One `manage.py sendworker` process then drains the queue against the sandbox
WeChat (uvicorn, 2 workers) in which every custom/send call sleeps 100 ms.
Throughput is sends per second between the first and the last `sent_at`;
duplicates are counted on the sandbox's side (what "WeChat" received).
"""

import os
import time
from pathlib import Path

from bench import env
from bench.common import BENCH_PY, ROOT, Server, log

SEND = "/cgi-bin/message/custom/send"
SECRET = "bench-app-secret-value"


def followers(account, count):
    from django.test import Client

    from wechat.models import Contact
    from wechat.sandbox import follower as wx

    client = Client()
    for i in range(count):
        result = wx.act(account, f"o_send_{i:05d}", "text", content="在吗？", client=client)
        if not result.delivered:
            raise RuntimeError(f"follower push not delivered: {result.error}")
    return list(Contact.objects.filter(account=account, openid__startswith="o_send_").order_by("id"))


def queue(account, contacts, per_contact):
    from wechat import outbound

    ids = []
    for n in range(per_contact):
        for contact in contacts:
            message = outbound.queue_message(
                account=account, contact=contact, msgtype="text", data={"content": f"回复 {contact.openid} #{n}"}
            )
            ids.append(message.pk)
    return ids


def wipe_sandbox():
    from django.apps import apps
    from django.db import connection

    tables = [m._meta.db_table for m in apps.get_app_config("sandbox").get_models()]
    tables += [m._meta.db_table for m in apps.get_app_config("django_tasks_database").get_models()]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


def run(urls, *, follower_count=400, per_contact=5, threads=32, latency_ms=100, timeout=240):
    from wechat.models import OfficialAccount, OutboundMessage, SendLog
    from wechat.sandbox import follower as wx

    env.wipe_traffic()
    wipe_sandbox()
    account = OfficialAccount.objects.get(appid=env.APPID)
    account.app_secret = SECRET
    account.save(update_fields=["app_secret"])
    # The sandbox's tokens were just wiped: a token stored by an earlier run
    # would cost the first calls a 40014 and a refresh.
    from wechat import tokens

    tokens.invalidate(account)
    base_env = env.server_env(urls["database"], urls["redis"])
    sandbox_cmd = [str(BENCH_PY), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"]
    sandbox_cmd += ["--no-access-log", "--log-config", str(ROOT / "bench" / "uvicorn-log.json"), "--workers", "2"]
    with Server("sandbox", sandbox_cmd, env=base_env, probe="/healthz") as sandbox:
        api_base = f"http://127.0.0.1:{sandbox.port}/sandbox"
        contacts = followers(account, follower_count)
        ids = queue(account, contacts, per_contact)
        wx.inject_fault("latency", count=len(ids) * 3, endpoint=SEND, delay_ms=latency_ms)
        worker_cmd = [str(BENCH_PY), "manage.py", "sendworker", "--threads", str(threads), "--interval", "0.05"]
        worker_env = {**base_env, "WECHAT_API_BASE": api_base}
        worker = Server("sendworker", worker_cmd, env=worker_env, probe=None)
        started = time.monotonic()
        sandbox_cpu_before = _cpu_seconds(sandbox)
        database = urls["database"].rsplit("/", 1)[1]
        postgres_before = _postgres_cpu(database)
        worker.start()
        pending = OutboundMessage.objects.filter(pk__in=ids, status__in=["queued", "sending"])
        while pending.exists() and time.monotonic() - started < timeout:
            time.sleep(0.5)
        peak = worker.peak_rss_mb()
        sandbox_peak = sandbox.peak_rss_mb()
        worker_cpu = _cpu_seconds(worker)
        sandbox_cpu = _cpu_seconds(sandbox) - sandbox_cpu_before
        postgres_cpu = _postgres_cpu(database, since=postgres_before)
        worker.stop()
    sandbox_log = sandbox.log_path.read_text(errors="replace")
    rows = OutboundMessage.objects.filter(pk__in=ids)
    statuses = {s: rows.filter(status=s).count() for s in ("sent", "queued", "sending", "failed", "unknown")}
    sent = list(rows.filter(status="sent").order_by("sent_at").values_list("sent_at", flat=True))
    span = (sent[-1] - sent[0]).total_seconds() if len(sent) > 1 else None
    delivered = wx.delivered(account)
    contents = [m.payload.get("content") for m in delivered]
    result = {
        "queued": len(ids),
        "threads": threads,
        "latency_ms": latency_ms,
        "statuses": statuses,
        "sends_per_s": round((len(sent) - 1) / span, 1) if span else None,
        "span_s": round(span, 1) if span else None,
        "delivered_to_sandbox": len(contents),
        "duplicates": len(contents) - len(set(contents)),
        "send_logs": SendLog.objects.filter(endpoint__startswith=SEND).count(),
        # What each call took as the worker saw it: injected latency plus the
        # sandbox's own time (and its queueing when it cannot keep up).
        "call_ms_median": _median(SendLog.objects.filter(endpoint__startswith=SEND), "latency_ms"),
        "http_statuses": _counts(SendLog.objects.filter(endpoint__startswith=SEND), "http_status"),
        "failure_reasons": _counts(rows.filter(status="failed"), "reason"),
        # PostgreSQL refusing connections ("too many clients") makes the
        # sandbox answer 500: a property of the shared server, not of WeChat.
        "sandbox_db_refusals": sandbox_log.count("too many clients"),
        # CPU spent per message sent, worker and sandbox: on a shared, loaded
        # machine a steadier figure than the rate (PostgreSQL's is not counted).
        "worker_cpu_ms_per_send": round(1000 * worker_cpu / max(statuses["sent"], 1), 1),
        "sandbox_cpu_ms_per_send": round(1000 * sandbox_cpu / max(statuses["sent"], 1), 1),
        # The backends serving this database (a lower bound: connections that
        # closed during the run are not seen).
        "postgres_cpu_ms_per_send": round(1000 * postgres_cpu / max(statuses["sent"], 1), 1),
        "worker_peak_rss_mb": peak,
        "sandbox_peak_rss_mb": sandbox_peak,
    }
    log(
        f"sendworker {threads} threads, {latency_ms} ms: {result['sends_per_s']} sends/s, "
        f"{statuses}, duplicates {result['duplicates']}"
    )
    return result


def _postgres_cpu(database, since=None):
    """CPU seconds of the PostgreSQL backends connected to `database`: {pid: s}, or the sum used after `since`."""
    now = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres: ") or f" {database} " not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        now[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if since is None:
        return now
    return sum(used - since.get(pid, 0) for pid, used in now.items())


def _cpu_seconds(server):
    """User + system CPU time of a server's processes so far (Linux /proc), in seconds."""
    ticks = 0
    for pid in server.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _median(qs, field):
    values = sorted(v for v in qs.values_list(field, flat=True) if v is not None)
    return values[len(values) // 2] if values else None


def _counts(qs, field):
    from django.db.models import Count

    rows = qs.values(field).annotate(n=Count("id")).order_by("-n")[:5]
    return {str(r[field]): r["n"] for r in rows}
