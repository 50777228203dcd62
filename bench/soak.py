"""The soak: mixed traffic for N minutes, memory must stay flat.

One uvicorn (2 workers) serves the console, the webhook fast path and the
sandbox WeChat; one send worker sends through the sandbox (100 ms latency).
Traffic, all at once:
* 10 agents on websockets and an open-loop sender at 20 pushes/s
  (bench/fanout_client.py, in its own process);
* followers writing through the sandbox's follower API over HTTP, each
  answered with a queued reply that the worker sends;
* the conversation list polled over HTTP as a logged-in agent.
RSS of every process is sampled every 10 s; "flat" compares the average of
the last third of the samples with the first third.
"""

import json
import subprocess
import time
import urllib.request

from bench import env
from bench.common import BENCH_PY, ROOT, Server, descendants, log, proc_status_mb
from bench.fanout import agents
from bench.webhook import signed_query

SEND = "/cgi-bin/message/custom/send"


def rss_now(server):
    return {pid: proc_status_mb(pid, "VmRSS") or 0 for pid in [server.proc.pid, *descendants(server.proc.pid)]}


def run(urls, *, minutes):
    from django.test import Client

    from bench.sendworker import SECRET, wipe_sandbox
    from wechat import outbound
    from wechat.models import OfficialAccount, OutboundMessage
    from wechat.sandbox import follower as wx

    env.wipe_traffic()
    wipe_sandbox()
    account = OfficialAccount.objects.get(appid=env.APPID)
    account.app_secret = SECRET
    account.save(update_fields=["app_secret"])
    cookies = agents(10, account)
    seconds = int(minutes * 60)
    base_env = env.server_env(urls["database"], urls["redis"])
    cmd = [str(BENCH_PY), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}"]
    cmd += ["--no-access-log", "--log-config", str(ROOT / "bench" / "uvicorn-log.json"), "--workers", "2"]
    cmd += ["--ws-per-message-deflate", "false"]  # as in production (Procfile, docs/deploy)
    with Server("soak-web", cmd, env=base_env, probe="/healthz") as web:
        base = f"http://127.0.0.1:{web.port}"
        worker = Server(
            "soak-worker",
            [str(BENCH_PY), "manage.py", "sendworker", "--threads", "8"],
            env={**base_env, "WECHAT_API_BASE": f"{base}/sandbox"},
            probe=None,
        ).start()
        wx.inject_fault("latency", count=10**6, endpoint=SEND, delay_ms=100)
        config = {
            "port": web.port,
            "path": f"/wechat/{env.APPID}/?{signed_query()}",
            "token": env.TOKEN,  # sign each push: 30 minutes outlast the 300 s timestamp tolerance
            "cookies": cookies,
            "rate": 20,
            "seconds": seconds,
            "to_user": env.ORIGINAL_ID,
            "msgbase": 7 * 10**12,
            "after_id": 0,
        }
        pusher = subprocess.Popen(
            [str(BENCH_PY), str(ROOT / "bench" / "fanout_client.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        pusher.stdin.write(json.dumps(config))
        pusher.stdin.close()
        poller = Client()
        poller.force_login(account.agents.first())
        session = poller.cookies["sessionid"].value
        samples, replies, polls, poll_errors, n = [], 0, 0, 0, 0
        started = time.monotonic()
        next_sample = started
        while time.monotonic() - started < seconds:
            openid = f"o_soak_{n % 50:03d}"
            n += 1
            result = wx.act(account, openid, "text", content=f"浸泡 {n}", webhook_base=base)
            if result.delivered:
                from wechat.models import Contact

                contact = Contact.objects.get(account=account, openid=openid)
                try:
                    outbound.queue_message(
                        account=account, contact=contact, msgtype="text", data={"content": f"答 {n}"}
                    )
                    replies += 1
                except outbound.SendRefused:
                    pass
            polls += 1
            if _status(f"{base}/api/conversations/?tab=all", session) != 200:
                poll_errors += 1
            if time.monotonic() >= next_sample:
                samples.append({"web": rss_now(web), "worker": rss_now(worker)})
                next_sample += 10
            time.sleep(0.5)
        out = pusher.stdout.read()
        pusher.wait(timeout=120)
        pushed = json.loads(out) if out.strip() else {}
        time.sleep(3)
        peak = {"web server (worst process)": max(web.peak_rss_mb().values(), default=0)}
        peak["send worker"] = max(worker.peak_rss_mb().values(), default=0)
        worker.stop()
    sent = OutboundMessage.objects.filter(status="sent").count()
    series = [max(s["web"].values(), default=0) for s in samples]
    third = max(1, len(series) // 3)
    first = round(sum(series[:third]) / third, 1)
    last = round(sum(series[-third:]) / third, 1)
    result = {
        "minutes": minutes,
        "pushes": pushed.get("messages", 0) + n,
        "push_errors": pushed.get("non2xx", 0),
        "replies": replies,
        "sent": sent,
        "polls": polls,
        "poll_errors": poll_errors,
        "rss_first_mb": first,
        "rss_last_mb": last,
        "growth_mb": round(last - first, 1),
        "allowed_growth_mb": max(10.0, round(first * 0.1, 1)),
        "peak_rss_mb": peak,
        "samples": len(series),
        "fanout": pushed,
    }
    log(f"soak {minutes} min: RSS {first} → {last} MB, pushes {result['pushes']}, sent {sent}")
    return result


def _status(url, session):
    req = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 — loopback only
            return response.status
    except OSError:
        return 0
