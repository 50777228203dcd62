"""Real servers for the reliability suite: uvicorn on a free loopback port,
against the same test database as the test (a file for SQLite, the test
database for PostgreSQL), plus raw-HTTP helpers that can send what a
well-behaved client never would.
"""

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from tests.sending.live import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


def test_database_url():
    """The URL of the database the test runs on, for a server process to share it."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "")
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{settings['NAME']}"


class Uvicorn:
    """`uvicorn config.asgi:application` as production runs it, in its own process group."""

    def __init__(self, *, workers=1, env=None):
        self.workers = workers
        self.extra_env = env or {}
        self.port = None
        self.proc = None
        self.log = None

    def start(self, timeout=60):
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": test_database_url(), "LOG_LEVEL": "WARNING", "SERVE_STATIC": "false"}
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--no-access-log", "--timeout-graceful-shutdown", "2"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self.log = tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.output()[-2000:]}")
            try:
                status, _, _ = request(self.port, "GET", "/wechat/__probe__/", timeout=2)
            except OSError:
                time.sleep(0.1)
                continue
            if status == 404:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"uvicorn did not come up: {self.output()[-2000:]}")

    def worker_pids(self):
        if self.workers == 1:
            return [self.proc.pid]
        # multiprocessing also starts a resource tracker; workers run spawn_main.
        return [pid for pid in _children(self.proc.pid) if _is_worker(pid)]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.log is not None:
            self.log.close()

    def output(self):
        return Path(self.log.name).read_text(errors="replace") if self.log else ""


def _children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _is_worker(pid):
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline and b"resource_tracker" not in cmdline


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def request(port, method, path, body=b"", headers=None, *, timeout=10):
    """One HTTP/1.1 request on a fresh socket → (status, headers, body).

    A socket timeout is the bound on time: a server that does not answer
    within it fails the test with an error, not a timed assertion.
    """
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    headers = dict(headers or {})
    if "Transfer-Encoding" not in headers:
        headers.setdefault("Content-Length", str(len(body)))
    head += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return read_response(sock)


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        return status, headers, body
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def stream_body(port, path, *, total, chunked, chunk=16 * 1024, timeout=10):
    """Send up to `total` bytes of body, stopping as soon as the server answers.

    Returns (status, body, bytes_sent). A server that refuses early answers
    while the client still has most of the body left to send.
    """
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/xml", "Connection: close"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    payload = b"<xml><Content><![CDATA[" + b"A" * chunk
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                break  # the server answered before the body was complete
            if not writable:
                raise TimeoutError("server neither reads nor answers")
            part = payload[: min(chunk, total - sent)]
            wire = f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part
            try:
                sock.sendall(wire)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        status, _headers, body = read_response(sock)
        return status, body, sent
