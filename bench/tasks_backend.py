"""Which Django Tasks backend should carry deliveries: django-tasks-db on PostgreSQL, or RQ on Redis?

    python bench/tasks_backend.py [--messages 300] [--noops 2000] [--paced 40 --rate 4]

Side by side in one run (docs/benchmarks.md's method), on the throwaway
PostgreSQL and Redis of scripts/services.sh, loopback only, every wait bounded:

* db — `django_tasks_db.DatabaseBackend` (what we use): 2 × `manage.py
  sendworker --threads 4`, the Procfile's worker, polling every 0.5 s per
  idle thread and claiming with SELECT … FOR UPDATE SKIP LOCKED.
* rq — `django_tasks_rq.RQBackend` 0.12 (django-rq, rq): 8 × `manage.py
  rqworker --worker-class rq.SimpleWorker --job-class django_tasks_rq.Job`
  (one job at a time per process, no fork per job) — the same 8-way concurrency.

For each, a fresh database and:

1. queue overhead — enqueue N no-op tasks, then drain them with the workers;
2. a backlog of real deliveries — F followers × 5 messages through
   `outbound.queue_message` (ledger row, window gate, enqueue on commit) with no
   worker running, then drained, each sent by `wechat.tasks.deliver` to the
   sandbox WeChat (a uvicorn of the project); the rate comes from the ledger's
   own timestamps, and every message is checked sent exactly once;
3. latency at a steady load — messages queued open-loop at a fixed rate, each
   to a follower of its own; queued→sent from the ledger.

The RQ packages are installed into var/bench-tasks-venv (project requirements
pinned to .venv's versions), never into the project's requirements.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VENV = ROOT / "var" / "bench-tasks-venv"
VENV_PY = VENV / "bin" / "python"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
LOGS = ROOT / "var" / "bench" / "tasks"
DB_NAME = "kefu_tasks_bench"
RQ_DB = 7  # a Redis database of the bench's own for RQ's keys
EXTRA = ["django-tasks-rq==0.12.0"]
APPID = "wx_tasks_bench_001"
WAIT = 300  # seconds: the bound on every wait


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


# --- orchestration (runs in the project's .venv) ------------------------------------------


def ensure_venv():
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= (ROOT / "requirements.txt").stat().st_mtime:
        return
    log("installing", " ".join(EXTRA), "into", VENV)
    if not VENV_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    frozen = subprocess.run([str(PROJECT_PY), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    constraints = VENV / "constraints.txt"
    constraints.write_text(frozen.stdout)
    subprocess.run(
        [str(VENV_PY), "-m", "pip", "install", "-q", "-r", str(ROOT / "requirements.txt"), *EXTRA],
        check=True,
        env={**os.environ, "PIP_CONSTRAINT": str(constraints)},
    )
    stamp.touch()


def start_services():
    out = subprocess.run(["scripts/services.sh", "start"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = dict(line.split(" ", 1)[1].split("=", 1) for line in out.stdout.splitlines() if "_URL=" in line)
    return found["DATABASE_URL"], found["REDIS_URL"]


def versions():
    got = subprocess.run(
        [
            str(VENV_PY),
            "-c",
            "import importlib.metadata as m;print(*[m.version(p) for p in "
            "('django','django-tasks','django-tasks-db','django-tasks-rq','rq','django-rq','psycopg','redis')])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = ["django", "django-tasks", "django-tasks-db", "django-tasks-rq", "rq", "django-rq", "psycopg", "redis"]
    return dict(zip(names, got, strict=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="deliveries (multiple of 5)")
    parser.add_argument("--noops", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=40, help="messages sent at a steady rate")
    parser.add_argument("--rate", type=float, default=4.0, help="offered load of the paced case, msg/s")
    parser.add_argument("--backends", default="db,rq")
    parser.add_argument("--db-interval", default="0.5", help="sendworker --interval (idle poll per thread, s)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds in ABBA order (db rq rq db …), so drift on a shared box evens out"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args)
    LOGS.mkdir(parents=True, exist_ok=True)
    ensure_venv()
    database_url, redis_url = start_services()
    base = database_url.rsplit("/", 1)[0]
    results = {}
    backends = args.backends.split(",")
    order = []
    for n in range(args.rounds):
        order += backends if n % 2 == 0 else backends[::-1]
    for backend in order:
        log(f"--- {backend}")
        env = {
            **os.environ,
            "BENCH_TASKS": backend,
            "BENCH_ADMIN_URL": f"{base}/postgres",
            "DATABASE_URL": f"{base}/{DB_NAME}",
            "REDIS_URL": redis_url,
            "BENCH_RQ_URL": redis_url.rsplit("/", 1)[0] + f"/{RQ_DB}",
            "CHANNEL_LAYER_PREFIX": "tasksbench",
            "DJANGO_SETTINGS_MODULE": "bench.tasks_settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WECHAT_SANDBOX": "true",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        one = [str(VENV_PY), __file__, "--one", backend, "--messages", str(args.messages)]
        one += ["--noops", str(args.noops), "--paced", str(args.paced), "--rate", str(args.rate)]
        one += ["--db-interval", args.db_interval]
        done = subprocess.run(one, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=WAIT * 4)
        for line in done.stdout.splitlines():
            if not line.startswith("RESULT "):
                print(line, flush=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.exit(f"{backend} run failed (exit {done.returncode}); logs in {LOGS}")
        results.setdefault(backend, []).append(json.loads(lines[-1][len("RESULT ") :]))
    report(results, args)


def report(results, args):
    """Median of each backend's rounds, the rounds themselves in brackets, and the ratio of the medians."""
    print()
    print(f"versions: {json.dumps(versions())}")
    print(f"machine: {os.cpu_count()} cores, shared layout (workers, sandbox and PostgreSQL on the same cores)")
    print()
    rows = [
        ("enqueue no-op tasks/s", "enqueue_per_s", "{:.0f}"),
        ("drain no-op tasks/s (8-way)", "noop_drain_per_s", "{:.0f}"),
        ("queue_message/s (ledger + gate + enqueue)", "queue_per_s", "{:.0f}"),
        ("backlog drained, deliveries/s (8-way)", "drain_per_s", "{:.1f}"),
        ("queued→sent p50 at a steady load, s", "paced_p50", "{:.3f}"),
        ("queued→sent p90 at a steady load, s", "paced_p90", "{:.3f}"),
        ("queued→sent max at a steady load, s", "paced_max", "{:.3f}"),
    ]
    names = list(results)
    pair = names == ["db", "rq"]
    print("| measure | " + " | ".join(names) + (" | rq / db |" if pair else " |"))
    print("|---|" + "---|" * (len(names) + (1 if pair else 0)))
    for label, key, fmt in rows:
        medians = {n: statistics.median(r[key] for r in results[n]) for n in names}
        cells = [fmt.format(medians[n]) + " (" + ", ".join(fmt.format(r[key]) for r in results[n]) + ")" for n in names]
        ratio = f" {medians['rq'] / medians['db']:.2f} |" if pair and medians["db"] else (" |" if pair else "")
        print(f"| {label} | " + " | ".join(cells) + " |" + ratio)
    once = {n: all(r["exactly_once"] for r in results[n]) for n in names}
    print(
        "| every message sent exactly once | " + " | ".join(str(once[n]) for n in names) + " |" + (" |" if pair else "")
    )
    print()
    print(
        f"rounds={args.rounds} db-interval={args.db_interval} messages={args.messages} noops={args.noops} paced={args.paced} at {args.rate:g}/s"
    )


# --- one backend (runs in var/bench-tasks-venv) ---------------------------------------------


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, argv, env=None):
        out = (LOGS / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env or os.environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self, procs=None):
        procs = self.procs if procs is None else procs
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def wait_until(predicate, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"gave up waiting for {what}")


def fresh_database():
    import psycopg

    with psycopg.connect(os.environ["BENCH_ADMIN_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_one(args):
    backend = args.one
    fresh_database()
    if backend == "rq":
        import redis

        redis.Redis.from_url(os.environ["BENCH_RQ_URL"]).flushdb()
    port = free_port()
    os.environ["WECHAT_API_BASE"] = f"http://127.0.0.1:{port}/sandbox"
    import django

    django.setup()
    procs = Procs()
    try:
        procs.start(
            f"{backend}-sandbox",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
        )
        import requests

        wait_until(lambda: _answers(requests, f"http://127.0.0.1:{port}/healthz"), "the sandbox server")
        result = measure(backend, args, procs)
    finally:
        procs.stop()
    print("RESULT " + json.dumps(result), flush=True)


def _answers(requests, url):
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


def start_workers(backend, procs, phase, interval="0.5"):
    if backend == "db":
        argv = [sys.executable, "manage.py", "sendworker", "--threads", "4", "--interval", interval]
        return [procs.start(f"db-{phase}-worker-{n}", argv) for n in range(2)]
    return [
        procs.start(
            f"rq-{phase}-worker-{n}",
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "--worker-class",
                "rq.SimpleWorker",
                "--job-class",
                "django_tasks_rq.Job",
                "send",
                "media",
                "default",
            ],
        )
        for n in range(8)
    ]


def noop_done(backend, count):
    if backend == "db":
        from django_tasks_db.models import DBTaskResult

        return DBTaskResult.objects.filter(status="SUCCESSFUL").count() >= count
    import django_rq
    from rq.registry import FinishedJobRegistry

    return FinishedJobRegistry(queue=django_rq.get_queue("default")).count >= count


def measure(backend, args, procs):
    from django.db import connection

    from bench.tasks_noop import noop
    from wechat.models import OfficialAccount, OutboundMessage
    from wechat.sandbox import follower as wx

    result = {}
    S = OutboundMessage.Status

    # 1. queue overhead: enqueue N no-ops, then drain them (rate from the first
    # completion to the last, so worker start-up is left out).
    started = time.perf_counter()
    for n in range(args.noops):
        noop.enqueue(n)
    result["enqueue_per_s"] = args.noops / (time.perf_counter() - started)
    workers = start_workers(backend, procs, "noop", args.db_interval)
    wait_until(lambda: noop_done(backend, 1), "the first no-op")
    first = time.perf_counter()
    wait_until(lambda: noop_done(backend, args.noops), "the no-op tasks")
    result["noop_drain_per_s"] = (args.noops - 1) / (time.perf_counter() - first)
    procs.stop(workers)
    log(backend, "no-ops", round(result["enqueue_per_s"]), "enqueued/s", round(result["noop_drain_per_s"]), "drained/s")

    account = OfficialAccount.objects.create(appid=APPID, name="任务压测", token="t", app_secret="bench-app-secret")
    backlog = followers(account, "backlog", args.messages // 5)
    paced = followers(account, "paced", args.paced)

    # 2. a backlog: F followers × 5 messages queued with no worker running,
    # then drained by the workers (rate from the ledger's own timestamps).
    started = time.perf_counter()
    for k in range(5):
        for contact in backlog:
            queue(account, contact, f"{contact.openid}-{k}")
    result["queue_per_s"] = args.messages / (time.perf_counter() - started)
    workers = start_workers(backend, procs, "backlog", args.db_interval)
    sent = OutboundMessage.objects.filter(contact__in=backlog, status=S.SENT)
    wait_until(lambda: sent.count() >= args.messages, "the backlog")
    span = sent.order_by("-sent_at")[0].sent_at - sent.order_by("claimed_at")[0].claimed_at
    result["drain_per_s"] = args.messages / span.total_seconds()
    contents = [p["content"] for p in wx.delivered(account).values_list("payload", flat=True)]
    result["exactly_once"] = len(contents) == args.messages and len(set(contents)) == args.messages
    log(backend, "backlog drained at", round(result["drain_per_s"], 1), "/s; exactly once:", result["exactly_once"])

    # 3. latency at a steady offered load: one message every 1/rate s
    # (open loop), each to a follower of its own, workers idle in between.
    time.sleep(1)
    ids = []
    interval = 1 / args.rate
    next_at = time.perf_counter()
    for contact in paced:
        time.sleep(max(0.0, next_at - time.perf_counter()))
        next_at += interval
        ids.append(queue(account, contact, "paced").pk)
    done = OutboundMessage.objects.filter(pk__in=ids, status=S.SENT)
    wait_until(lambda: done.count() == len(ids), "the paced sends")
    lat = sorted((m.sent_at - m.created_at).total_seconds() for m in done)
    result["paced_p50"] = statistics.median(lat)
    result["paced_p90"] = lat[max(0, int(len(lat) * 0.9) - 1)]
    result["paced_max"] = lat[-1]
    log(backend, "paced", args.rate, "/s: p50", round(result["paced_p50"], 3), "p90", round(result["paced_p90"], 3))
    procs.stop(workers)
    connection.close()
    return result


def followers(account, name, count):
    """Followers who just wrote: the console's window and the sandbox's own window book both open."""
    from wechat import window
    from wechat.models import Contact
    from wechat.sandbox import follower as wx

    made = []
    for n in range(count):
        openid = f"o_{name}_{n:04d}"
        wx.act(account, openid, "text", content="在吗", deliver=False)
        contact = Contact.objects.create(account=account, openid=openid)
        contact.set_window_state(window.apply_action(contact.window_state(), msg_type="text", event="", at=_now()))
        contact.save()
        made.append(contact)
    return made


def queue(account, contact, content):
    from wechat import outbound

    return outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": content})


def _now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    main()
