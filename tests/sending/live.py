"""Real processes on loopback for the sending tests: uvicorn serving the sandbox WeChat, send workers.

Both use the test's own database (file-backed SQLite or the PostgreSQL test
database), so the test, the server and the workers see the same rows. Every
wait is bounded; nothing here asserts on time.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url():
    """A DATABASE_URL for the test database the current connection uses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        auth = db.get("USER") or "postgres"
        if db.get("PASSWORD"):
            auth += f":{db['PASSWORD']}"
        return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    raise RuntimeError(f"no DATABASE_URL for {connection.vendor}")


def child_env(api_base="", **extra):
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": env.get("SECRET_KEY", "x"),
            "WECHAT_SANDBOX": "true",
            "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if api_base:
        env["WECHAT_API_BASE"] = api_base
    env.pop("TEST_DATABASE_NAME", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} after {timeout} s")


class Process:
    def __init__(self, args, env, log_path):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout=20):
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode


class Server(Process):
    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.api_base = f"{self.base}/sandbox"
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--lifespan",
            "off",
        ]
        super().__init__(args, child_env(self.api_base, **env), Path(tmp_path) / f"uvicorn-{self.port}.log")
        wait_until(self._ready, timeout=30, interval=0.1, what="uvicorn to answer /healthz")

    def _ready(self):
        if not self.alive():
            raise AssertionError(f"uvicorn exited:\n{self.output()}")
        try:
            return requests.get(f"{self.base}/healthz", timeout=1).status_code in (200, 503)
        except requests.RequestException:
            return False


class Worker(Process):
    count = 0

    def __init__(self, server, tmp_path, *, threads=4, **env):
        Worker.count += 1
        args = [
            sys.executable,
            "manage.py",
            "sendworker",
            "--threads",
            str(threads),
            "--interval",
            "0.1",
            "--sweep-interval",
            "0.5",
        ]
        log = Path(tmp_path) / f"worker-{Worker.count}.log"
        super().__init__(args, child_env(server.api_base, **env), log)
        wait_until(lambda: "sendworker" in self.output() or not self.alive(), timeout=30, what="worker start")
        if not self.alive():
            raise AssertionError(f"sendworker exited:\n{self.output()}")
