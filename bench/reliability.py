"""Long reliability runs of `make bench`: a PostgreSQL restart under traffic.

The shared PostgreSQL of scripts/services.sh serves other engineers, so this
run starts a private cluster (var/bench/pg-private, initdb once, loopback, a
free port), migrates it, and points uvicorn (2 workers) at it. Pushes go in
at a steady pace with WeChat's retry behaviour (§6.5: no 200 → post again);
mid-run the cluster is stopped with `-m immediate` (a crash: no checkpoint,
every connection cut) and started again. Expected: every push ends up
answered `success` and stored exactly once; the same uvicorn processes serve
again without a restart (CONN_HEALTH_CHECKS drops the dead connections).
"""

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import env
from bench.common import BENCH_PY, PROJECT_PY, ROOT, VAR, Server, free_port, log

DATA = VAR / "pg-private"


def pg_bin():
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if (d / "initdb").exists():
            return d
    raise RuntimeError("PostgreSQL binaries not found (make system-deps)")


def as_pg(cmd, **kwargs):
    # initdb and postgres refuse to run as root (as in scripts/services.sh).
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


class PrivatePostgres:
    def __init__(self):
        self.port = free_port()
        self.bin = pg_bin()

    def init(self):
        if not (DATA / "PG_VERSION").exists():
            DATA.mkdir(parents=True, exist_ok=True)
            if os.getuid() == 0:
                subprocess.run(["chown", "-R", "postgres", str(DATA)], check=True)
                os.chmod(DATA.parent, 0o755)
            as_pg([str(self.bin / "initdb"), "-D", str(DATA), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        return self

    def start(self):
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {DATA} -c fsync=off -c max_connections=100"
        as_pg(
            [str(self.bin / "pg_ctl"), "-D", str(DATA), "-l", str(DATA / "log"), "-w", "-t", "60", "-o", opts, "start"]
        )

    def crash(self):
        as_pg([str(self.bin / "pg_ctl"), "-D", str(DATA), "-m", "immediate", "-w", "stop"])

    def stop(self):
        subprocess.run(
            (["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else [])
            + [str(self.bin / "pg_ctl"), "-D", str(DATA), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
        )

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/kefu_restart"


def run(urls, *, pushes=400, rate=20):
    import psycopg

    from bench.webhook import body_template

    pg = PrivatePostgres().init()
    pg.stop()  # a cluster left running by an interrupted run
    pg.start()
    try:
        with psycopg.connect(pg.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS kefu_restart")
            conn.execute("CREATE DATABASE kefu_restart")
        server_env = env.server_env(pg.url, urls["redis"])
        subprocess.run(
            [str(PROJECT_PY), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=server_env, check=True
        )
        setup = (
            "from wechat.models import OfficialAccount as A;"
            f"A.objects.create(appid='{env.APPID}', token='{env.TOKEN}', original_id='{env.ORIGINAL_ID}')"
        )
        subprocess.run([str(PROJECT_PY), "manage.py", "shell", "-c", setup], cwd=ROOT, env=server_env, check=True)
        cmd = [str(BENCH_PY), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"]
        cmd += ["--no-access-log", "--log-config", str(ROOT / "bench" / "uvicorn-log.json"), "--workers", "2"]
        with Server("pg-restart", cmd, env=server_env, probe="/healthz") as server:
            workers_before = sorted(server.pids())
            result = _traffic(server.port, pg, pushes, rate, body_template(int(time.time())))
            result["same_processes"] = sorted(server.pids()) == workers_before
        with psycopg.connect(pg.url) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT msg_id) FROM wechat_inboundmessage"
            ).fetchone()
        result.update({"stored": stored, "distinct": distinct, "pushes": pushes})
        result["ok"] = stored == distinct == pushes and result["accepted"] == pushes
        log(f"postgres restart: {result}")
        return result
    finally:
        pg.stop()


def _traffic(port, pg, pushes, rate, template):
    from bench.webhook import signed_query
    from tests.reliability.servers import request

    query = signed_query()
    accepted, retried, lock = [], [], threading.Lock()

    def one(n):
        body = template.replace("{openid}", f"o_pg_{n % 37}").replace("{msgid}", str(5 * 10**12 + n)).encode()
        for attempt in range(1, 30):
            try:
                status, _, _ = request(port, "POST", f"/wechat/{env.APPID}/?{query}", body, timeout=10)
            except OSError:
                status = 0
            if status == 200:
                with lock:
                    accepted.append(n)
                    if attempt > 1:
                        retried.append(n)
                return
            time.sleep(min(0.5 * attempt, 3))

    started = time.monotonic()
    crashed_at = None
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for n in range(pushes):
            due = started + n / rate
            time.sleep(max(0, due - time.monotonic()))
            futures.append(pool.submit(one, n))
            if n == pushes // 3 and crashed_at is None:
                crashed_at = time.monotonic() - started
                pg.crash()
                threading.Timer(3.0, pg.start).start()
        for f in futures:
            f.result()
    return {
        "accepted": len(accepted),
        "accepted_after_retry": len(retried),
        "outage_at_s": round(crashed_at, 1),
        "outage_s": 3.0,
    }
