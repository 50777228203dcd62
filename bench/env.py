"""The production layout for the benchmarks: PostgreSQL + Redis from
scripts/services.sh, a database of the bench's own (`kefu_bench`), migrated,
with one account; Django set up in the orchestrator for fixtures and counts.
"""

import os
import re
import subprocess
import sys

from bench.common import BENCH_PY, BENCH_VENV, PROJECT_PY, ROOT, VAR, log

APPID = "wx_bench_appid_001"
TOKEN = "bench-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ORIGINAL_ID = "gh_benchaccount"
BENCH_DB = "kefu_bench"


def ensure_bench_venv():
    """Peers go into var/bench-venv, pinned to the project's versions."""
    stamp = BENCH_VENV / ".installed"
    requirements = ROOT / "bench" / "requirements.txt"
    # bench/requirements.txt includes the project's: a change to either reinstalls.
    newest = max(requirements.stat().st_mtime, (ROOT / "requirements.txt").stat().st_mtime)
    if stamp.exists() and stamp.stat().st_mtime >= newest:
        return
    log("installing the peers into", BENCH_VENV)
    if not BENCH_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    VAR.mkdir(parents=True, exist_ok=True)
    constraints = VAR / "constraints.txt"
    frozen = subprocess.run([str(PROJECT_PY), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    constraints.write_text(frozen.stdout)
    subprocess.run(
        [str(BENCH_PY), "-m", "pip", "install", "-q", "-r", str(requirements), "-c", str(constraints)],
        check=True,
        cwd=ROOT / "bench",
    )
    stamp.touch()


def start_services():
    """scripts/services.sh start (idempotent, shared); returns DATABASE_URL and REDIS_URL."""
    out = subprocess.run(["scripts/services.sh", "start"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = dict(re.findall(r"export (DATABASE_URL|REDIS_URL)=(\S+)", out.stdout))
    extra = dict(re.findall(r"(KEFU_\w+)=(\S+)", out.stdout))
    return found["DATABASE_URL"], found["REDIS_URL"], extra


def bench_database_url(database_url):
    return database_url.rsplit("/", 1)[0] + "/" + BENCH_DB


def create_database(database_url):
    import psycopg

    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def server_env(database_url, redis_url, **extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WECHAT_SANDBOX": "true",
        "SERVE_STATIC": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        # Channel-layer names of this bench run only: other runs on the shared
        # Redis must not reach (or be reached by) this run's agents.
        "CHANNEL_LAYER_PREFIX": f"kefubench{os.getpid()}",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def prepare(database_url, redis_url):
    """Migrate the bench database and set Django up in this process against it."""
    env = server_env(database_url, redis_url)
    subprocess.run([str(PROJECT_PY), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    for key in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "WECHAT_SANDBOX", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        os.environ[key] = env[key]
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    os.environ["LOG_LEVEL"] = "WARNING"
    # The list benchmark drives Django's test client in this process.
    os.environ["ALLOWED_HOSTS"] += ",testserver"
    import django

    django.setup()


def bench_account():
    from wechat.models import OfficialAccount

    account, _ = OfficialAccount.objects.update_or_create(
        appid=APPID,
        defaults={
            "name": "压测公众号",
            "token": TOKEN,
            "original_id": ORIGINAL_ID,
            "encoding_aes_key": AES_KEY,
            "crypto_mode": OfficialAccount.CryptoMode.COMPATIBLE,
            "is_active": True,
            "duplicate_pushes": 0,
        },
    )
    return account


def wipe_traffic():
    """Empty what the webhook writes, so each case starts from the same state."""
    import time

    from django.db import OperationalError, connection

    for attempt in range(10):
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "TRUNCATE wechat_liveupdate, wechat_inboundmessage, wechat_outboundmessage, "
                    "wechat_conversation, wechat_contact CASCADE"
                )
            break
        except OperationalError:
            # A server of the previous case may still be finishing its last
            # transaction (deadlock with TRUNCATE's exclusive locks): retry.
            if attempt == 9:
                raise
            time.sleep(1)
    from wechat.models import OfficialAccount

    OfficialAccount.objects.filter(appid=APPID).update(duplicate_pushes=0)


def counts():
    from wechat.models import Contact, InboundMessage, LiveUpdate, OfficialAccount

    return {
        "inbound": InboundMessage.objects.count(),
        "live_updates": LiveUpdate.objects.count(),
        "contacts": Contact.objects.count(),
        "duplicates": OfficialAccount.objects.get(appid=APPID).duplicate_pushes,
    }
