"""Benchmark 2: inbound POST → every agent's browser over the websocket.

uvicorn serves config.asgi (webhook fast path + the inbox consumer) on
PostgreSQL + Redis, 2 workers; N agents are logged in by session cookie and
connected to /ws/inbox/; an open-loop sender posts at a fixed rate. The
latency of each event is measured from its scheduled send time to its
arrival at each agent, database write included. See bench/fanout_client.py.
"""

import json
import subprocess
import uuid

from bench import env
from bench.common import BENCH_PY, ROOT, Server, log
from bench.webhook import signed_query


def agents(count, account):
    from django.contrib.auth.models import Group, User
    from django.test import Client

    group = Group.objects.get(name="agent")
    cookies = []
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench_fan_{i:03d}", defaults={"first_name": f"坐席{i}"})
        user.groups.add(group)
        account.agents.add(user)
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    return cookies


def run(urls, *, agent_count=50, rate=100, seconds=20, workers=2, server_args=()):
    """One case. `server_args`: extra uvicorn options, for comparing server settings side by side."""
    from wechat.models import LiveUpdate, OfficialAccount

    env.wipe_traffic()
    account = OfficialAccount.objects.get(appid=env.APPID)
    cookies = agents(agent_count, account)
    after_id = LiveUpdate.objects.order_by("-id").values_list("id", flat=True).first() or 0
    cmd = [str(BENCH_PY), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"]
    cmd += ["--no-access-log", "--log-config", str(ROOT / "bench" / "uvicorn-log.json"), "--workers", str(workers)]
    cmd += ["--ws-per-message-deflate", "false"]  # as in production (Procfile, docs/deploy)
    cmd += list(server_args)
    # A channel-layer prefix of its own: PubSub channels are global to the
    # Redis server, and anything else publishing to `account.<id>` on the
    # shared Redis (a webhook bench, a test run) would reach these agents.
    server_env = env.server_env(urls["database"], urls["redis"], CHANNEL_LAYER_PREFIX=f"fanout{uuid.uuid4().hex[:8]}")
    with Server("fanout", cmd, env=server_env, probe="/healthz") as server:
        config = {
            "port": server.port,
            "path": f"/wechat/{env.APPID}/?{signed_query()}",
            "cookies": cookies,
            "rate": rate,
            "seconds": seconds,
            "to_user": env.ORIGINAL_ID,
            "msgbase": 9 * 10**12,
            "after_id": after_id,
            "server_pids": server.pids(),
        }
        done = subprocess.run(
            [str(BENCH_PY), str(ROOT / "bench" / "fanout_client.py")],
            input=json.dumps(config),
            capture_output=True,
            text=True,
            timeout=seconds + 180,
            cwd=ROOT,
            check=False,
        )
        peak = server.peak_rss_mb()
    if done.returncode != 0:
        raise RuntimeError(f"fan-out client failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    result["peak_rss_mb"] = peak
    result["stored"] = env.counts()["inbound"]
    result["workers"] = workers
    result["server_args"] = list(server_args)
    log(
        f"fanout {agent_count} agents at {rate} msg/s: p99 {result['p99_ms']} ms, "
        f"missing live {result['missing_live']}, after catch-up {result['missing_after_catch_up']}"
    )
    return result
