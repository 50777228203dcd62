"""Which Django Tasks backend should carry deliveries: django-tasks-db on PostgreSQL, or RQ on Redis?

    python bench/tasks_backend.py [--messages 300] [--noops 2000] [--idle 20]

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
2. real deliveries — F followers × 5 messages through `outbound.queue_message`
   (ledger row, window gate, enqueue on commit) while the workers run, each sent
   by `wechat.tasks.deliver` to the sandbox WeChat (a uvicorn of the project);
   throughput and queue→sent latency from the ledger's own timestamps, and
   every message checked sent exactly once;
3. idle latency — single messages a quarter-second apart to idle workers.

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
    parser.add_argument("--idle", type=int, default=20)
    parser.add_argument("--backends", default="db,rq")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args)
    LOGS.mkdir(parents=True, exist_ok=True)
    ensure_venv()
    database_url, redis_url = start_services()
    base = database_url.rsplit("/", 1)[0]
    results = {}
    for backend in args.backends.split(","):
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
        one += ["--noops", str(args.noops), "--idle", str(args.idle)]
        done = subprocess.run(one, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=WAIT * 4)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.exit(f"{backend} run failed (exit {done.returncode}); logs in {LOGS}")
        results[backend] = json.loads(lines[-1][len("RESULT ") :])
    report(results, args)


def report(results, args):
    print()
    print(f"versions: {json.dumps(versions())}")
    print(f"machine: {os.cpu_count()} cores, shared layout (workers, sandbox and PostgreSQL on the same cores)")
    print()
    rows = [
        ("enqueue no-op tasks/s", "enqueue_per_s", "{:.0f}"),
        ("drain no-op tasks/s (8-way)", "noop_drain_per_s", "{:.0f}"),
        ("queue_message/s (ledger+gate+enqueue)", "queue_per_s", "{:.0f}"),
        ("deliveries/s end to end (8-way)", "deliver_per_s", "{:.1f}"),
        ("queued→sent p50 under backlog, s", "backlog_p50", "{:.2f}"),
        ("queued→sent p99 under backlog, s", "backlog_p99", "{:.2f}"),
        ("queued→sent idle p50, s", "idle_p50", "{:.3f}"),
        ("queued→sent idle p90, s", "idle_p90", "{:.3f}"),
        ("sent exactly once", "exactly_once", "{}"),
    ]
    names = list(results)
    print("| measure | " + " | ".join(names) + (" | rq / db |" if names == ["db", "rq"] else " |"))
    print("|---|" + "---|" * (len(names) + (1 if names == ["db", "rq"] else 0)))
    for label, key, fmt in rows:
        cells = [fmt.format(results[n][key]) for n in names]
        ratio = ""
        if names == ["db", "rq"] and isinstance(results["db"][key], float) and results["db"][key]:
            ratio = f" {results['rq'][key] / results['db'][key]:.2f} |"
        elif names == ["db", "rq"]:
            ratio = " |"
        print(f"| {label} | " + " | ".join(cells) + " |" + ratio)
    print()
    print(f"messages={args.messages} noops={args.noops} idle={args.idle}")


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

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
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


def start_workers(backend, procs):
    if backend == "db":
        for n in range(2):
            procs.start(f"db-worker-{n}", [sys.executable, "manage.py", "sendworker", "--threads", "4"])
    else:
        for n in range(8):
            procs.start(
                f"rq-worker-{n}",
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
    from wechat import outbound, window
    from wechat.models import Contact, OfficialAccount, OutboundMessage
    from wechat.sandbox import follower as wx

    result = {}
    # 1. queue overhead
    task = noop
    started = time.perf_counter()
    for n in range(args.noops):
        task.enqueue(n)
    result["enqueue_per_s"] = args.noops / (time.perf_counter() - started)
    started = time.perf_counter()
    start_workers(backend, procs)
    wait_until(lambda: noop_done(backend, args.noops), "the no-op tasks")
    # Includes worker start-up (the same for both: Django setup), so it is a floor.
    result["noop_drain_per_s"] = args.noops / (time.perf_counter() - started)
    log(backend, "no-ops", round(result["enqueue_per_s"]), "enqueued/s", round(result["noop_drain_per_s"]), "drained/s")

    # 2. real deliveries while the workers run
    account = OfficialAccount.objects.create(appid=APPID, name="任务压测", token="t", app_secret="bench-app-secret")
    followers = []
    for n in range(args.messages // 5 + args.idle):
        openid = f"o_tasks_{n:04d}"
        wx.act(account, openid, "text", content="在吗", deliver=False)  # the sandbox's own window book
        contact = Contact.objects.create(account=account, openid=openid)
        contact.set_window_state(window.apply_action(contact.window_state(), msg_type="text", event="", at=_now()))
        contact.save()
        followers.append(contact)
    batch = followers[: args.messages // 5]
    started = time.perf_counter()
    for k in range(5):
        for contact in batch:
            outbound.queue_message(
                account=account, contact=contact, msgtype="text", data={"content": f"{contact.openid}-{k}"}
            )
    queued_in = time.perf_counter() - started
    result["queue_per_s"] = args.messages / queued_in
    sent = OutboundMessage.objects.filter(status=OutboundMessage.Status.SENT)
    wait_until(lambda: sent.count() >= args.messages, "the deliveries")
    result["deliver_per_s"] = args.messages / (time.perf_counter() - started)
    lat = sorted((m.sent_at - m.created_at).total_seconds() for m in sent)
    result["backlog_p50"] = statistics.median(lat)
    result["backlog_p99"] = lat[int(len(lat) * 0.99) - 1]
    delivered = list(wx.delivered(account).values_list("payload", flat=True))
    contents = [p["content"] for p in delivered]
    result["exactly_once"] = len(contents) == args.messages and len(set(contents)) == args.messages
    log(backend, "deliveries", round(result["deliver_per_s"], 1), "/s; exactly once:", result["exactly_once"])

    # 3. idle latency
    time.sleep(2)
    ids = []
    for contact in followers[args.messages // 5 :]:
        ids.append(
            outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "idle"}).pk
        )
        time.sleep(0.25)
    idle = OutboundMessage.objects.filter(pk__in=ids, status=OutboundMessage.Status.SENT)
    wait_until(lambda: idle.count() == len(ids), "the idle sends")
    lat = sorted((m.sent_at - m.created_at).total_seconds() for m in idle)
    result["idle_p50"] = statistics.median(lat)
    result["idle_p90"] = lat[int(len(lat) * 0.9) - 1]
    log(backend, "idle p50", round(result["idle_p50"], 3), "p90", round(result["idle_p90"], 3))
    connection.close()
    return result


def _now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    main()
