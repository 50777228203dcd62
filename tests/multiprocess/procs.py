"""Real processes and real faults on loopback: a private Redis, a TCP link that can be cut, an agent's websocket.

The web and worker processes themselves come from tests/sending/live.py (uvicorn
and `manage.py sendworker` on the test database). This module adds what the
production-path tests need beside them. Every wait is bounded; nothing asserts
on elapsed time.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from websockets.sync.client import connect

from tests.sending.live import free_port, wait_until

REDIS_SERVER = shutil.which("redis-server")


def needs_production_services():
    """Skip markers for tests that need the PostgreSQL + Redis run (`make test`'s second pass)."""
    return [
        pytest.mark.skipif(
            not os.environ.get("REDIS_URL"),
            reason="needs REDIS_URL (a real Redis): runs in the PostgreSQL + Redis pass of `make test`",
        ),
        pytest.mark.skipif(
            not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
            reason="needs a PostgreSQL DATABASE_URL: runs in the PostgreSQL + Redis pass of `make test`",
        ),
    ]


def needs_redis_server():
    return pytest.mark.skipif(REDIS_SERVER is None, reason="needs Debian's redis-server binary (make system-deps)")


def unique_prefix():
    """A channel-layer prefix of this test's own: PubSub channels are global to a Redis server."""
    return f"t{uuid.uuid4().hex[:10]}"


class PrivateRedis:
    """A redis-server of the test's own (with a password), so it can be stopped without touching anyone else's."""

    def __init__(self, password="r3dis-pw-Secret"):
        self.port = free_port()
        self.password = password
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=20, what="redis-server to answer PING")
        return self

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                return b"PONG" in _read_some(sock)
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        wait_until(lambda: not self.answers(), timeout=10, what="redis-server to stop")


def _read_some(sock):
    data = b""
    sock.settimeout(1)
    try:
        while b"PONG" not in data and b"-" not in data[:1]:
            chunk = sock.recv(256)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


class Link:
    """A TCP relay from a free loopback port to `target`, which the test can cut.

    States: "open" relays; "down" refuses new connections and drops open ones
    (a server that stopped); "silent" accepts and never answers (a host that
    vanished from the network) — the case that would hang a client without
    timeouts of its own.
    """

    def __init__(self, target_host, target_port):
        self.target = (target_host, int(target_port))
        self.port = free_port()
        self.state = "open"
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = None
        self._listen()

    def _listen(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
                state = self.state
            if state == "silent":
                continue  # held open, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _drop_all(self):
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def down(self):
        self.state = "down"
        self._listener.close()
        self._drop_all()

    def silent(self):
        # Open connections stay open but nothing crosses any more, as when a
        # host drops off the network; new ones are accepted and left unanswered.
        if self.state == "down":
            self._listen()
        self.state = "silent"

    def open(self):
        self._drop_all()
        if self.state == "down":
            self._listen()
        self.state = "open"

    def close(self):
        self.state = "down"
        self._listener.close()
        self._drop_all()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.state == "open":
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def database_via(link):
    """The test database's DATABASE_URL, but through `link`."""
    db = connection.settings_dict
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@127.0.0.1:{link.port}/{db['NAME']}"


# --- an agent's websocket -----------------------------------------------------------


def session_cookie(user):
    """Log `user` in through Django's session store (the database every process shares)."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Agent:
    """The inbox's websocket protocol (inbox/consumers.py), spoken by a test instead of live.js."""

    def __init__(self, server, cookie):
        self.server = server
        self.cookie = cookie
        self.ws = None
        self.last_id = 0
        self.hello = None

    def connect(self):
        url = f"ws://127.0.0.1:{self.server.port}/ws/inbox/"
        self.ws = connect(
            url,
            additional_headers={"Cookie": self.cookie},
            origin=f"http://127.0.0.1:{self.server.port}",
            open_timeout=10,
            proxy=None,
            legacy=True,  # a connection the test opens and closes itself, not a `with` block
        )
        self.hello = self.receive(lambda m: m["type"] == "hello")
        return self

    def send(self, message):
        self.ws.send(json.dumps(message))

    def receive(self, matches, timeout=20.0):
        """The next message for which `matches` is true (others are skipped, live ids remembered)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching websocket message within {timeout} s")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            message = json.loads(raw)
            if message.get("type") == "live":
                self.last_id = max(self.last_id, message["id"])
            if matches(message):
                return message

    def live(self, predicate=lambda m: True, timeout=20.0):
        return self.receive(lambda m: m.get("type") == "live" and predicate(m), timeout=timeout)

    def catch_up(self, after=None):
        self.send({"type": "catch_up", "after": self.last_id if after is None else after})
        answer = self.receive(lambda m: m["type"] == "caught_up")
        for update in answer["updates"]:
            self.last_id = max(self.last_id, update["id"])
        return answer["updates"]

    def close(self):
        if self.ws is not None:
            self.ws.close()
            self.ws = None
