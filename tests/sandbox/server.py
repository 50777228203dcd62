"""A real uvicorn process serving the project on a free loopback port, for tests.

It shares the test database (a file for SQLite, the test database on
PostgreSQL), so rows the test commits are what the server sees. Use with
`django_db_serialized_rollback` and `transactional_db`.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.sending.live import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "WECHAT_SANDBOX": "true",
            "WECHAT_API_BASE": f"{self.base}/sandbox",
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "x"),
            "ALLOWED_HOSTS": "localhost,127.0.0.1,testserver",
            **env,
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process = None

    def start(self, timeout=30):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.process.stdout.read().decode(errors='replace')}")
            try:
                requests.get(f"{self.base}/sandbox/cgi-bin/token", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("uvicorn did not start in time")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
