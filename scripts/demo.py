"""`make demo`: migrate, seed, then run the console, the send worker and the sandbox WeChat.

Everything is embedded: SQLite under var/demo/, the in-process channel layer,
the sandbox WeChat served by the console itself at /sandbox/. Ctrl-C stops all.
"""

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "var" / "demo"
PY = sys.executable

# The demo account: safe mode, so the whole crypto path runs too.
DEMO_APPID = "wxdemo0000000001"
DEMO_TOKEN = "kefu-demo-token"
DEMO_AES_KEY = "KefuConsoleDemoAESKey0000000000000000000001"


def demo_env(host, port):
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    secret_file = DEMO_DIR / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(50))
    base = f"http://{host}:{port}"
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": env.get("DEBUG", "false"),
            "SECRET_KEY": secret_file.read_text().strip(),
            "ALLOWED_HOSTS": f"{host},localhost,127.0.0.1",
            "DATABASE_URL": f"sqlite:///{DEMO_DIR / 'db.sqlite3'}",
            "MEDIA_ROOT": str(DEMO_DIR / "media"),
            "WECHAT_SANDBOX": "true",
            "WECHAT_API_BASE": f"{base}/sandbox",
            "SANDBOX_WEBHOOK_BASE": base,
            "WECHAT_APP_ID": DEMO_APPID,
            "WECHAT_APP_SECRET": secrets.token_hex(16),
            "WECHAT_TOKEN": DEMO_TOKEN,
            "WECHAT_ENCODING_AES_KEY": DEMO_AES_KEY,
            "WECHAT_ORIGINAL_ID": "gh_kefudemo0001",
            "WECHAT_ACCOUNT_NAME": "客服演示公众号",
        }
    )
    env.pop("REDIS_URL", None)
    return env


def port_free(host, port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run(args, env):
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def wait_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
                return True
        except OSError:
            time.sleep(0.3)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if not port_free(args.host, args.port):
        sys.exit(f"Port {args.port} on {args.host} is busy. Try: make demo PORT=8001")

    env = demo_env(args.host, args.port)
    run(["migrate", "--noinput", "-v", "0"], env)
    # The worker reads the secret the account was synced with, so keep it stable.
    run(["seed_demo"], env)

    procs = [
        subprocess.Popen(  # noqa: S603
            [
                PY,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                args.host,
                "--port",
                str(args.port),
                "--no-access-log",
                "--ws-per-message-deflate",
                "false",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen([PY, "manage.py", "sendworker"], cwd=ROOT, env=env),  # noqa: S603
    ]

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    base = f"http://{args.host}:{args.port}"
    if not wait_http(f"{base}/healthz"):
        print("The console did not come up; see the output above.", file=sys.stderr)
        stop()
    print(
        f"""
================ Kefu Console demo is running ================
  Console (agents):      {base}/
  Follower simulator:    {base}/sandbox/
  Django admin:          {base}/admin/
  Operator dashboard:    {base}/ops/
  Health:                {base}/healthz

  Logins (username / password):
    admin       / admin-demo      (admin: everything)
    supervisor  / super-demo      (supervisor)
    agent1      / agent-demo      (agent 小李)
    agent2      / agent-demo      (agent 小王)
    operator    / operator-demo   (operator: logs and dashboard)

  Try it: open the simulator in one window, the console in another;
  write as a follower, answer as agent1. Ctrl-C stops everything.
===============================================================
""",
        flush=True,
    )
    while True:
        for p in procs:
            if p.poll() is not None:
                print(f"A demo process exited with {p.returncode}; stopping.", file=sys.stderr)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
