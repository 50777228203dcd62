"""Benchmark 1: webhook throughput, ours against the peers, side by side.

Every case runs the same uvicorn (same flags, same worker count) from the
same interpreter, in both layouts, interleaved round by round so that the
machine's drift hits every case alike:

* ours, plain and safe mode: config.asgi (the Channels fast path) on
  PostgreSQL + Redis — verify, parse, de-duplicate, store, publish;
* wechatpy: a Django view doing only signature check + parse, no storage;
* WeRoBot with its default SQLite session store (a committed write per push);
* a bare Django view answering `success`.

Every push carries a distinct MsgId, so ours never takes the duplicate
shortcut; after each of our runs the stored rows are counted against the
answers.
"""

import statistics
import time
from urllib.parse import urlencode

from bench import env
from bench.common import BENCH_PY, ROOT, VAR, Server, log, wrk

LUA = ROOT / "bench" / "wrk" / "push.lua"
CONNECTIONS = 32

LAYOUTS = {
    # server on core 1 (one worker), load generator on core 0
    "pinned": {"server_cpus": "1", "wrk_cpus": "0", "workers": 1, "threads": 1},
    # two workers and the load generator share both cores
    "shared": {"server_cpus": None, "wrk_cpus": None, "workers": 2, "threads": 2},
}

CASES = ["ours_plain", "ours_safe", "wechatpy", "werobot_sqlite", "django_bare"]

LABELS = {
    "ours_plain": "ours, full path (plain)",
    "ours_safe": "ours, full path (safe mode, AES)",
    "wechatpy": "Django view + wechatpy check + parse (no storage)",
    "werobot_sqlite": "WeRoBot, default SQLite session store",
    "django_bare": "bare Django view answering `success`",
}


def body_template(create_time):
    return (
        f"<xml><ToUserName><![CDATA[{env.ORIGINAL_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[压测消息：您好，请问订单什么时候发货？]]></Content>"
        "<MsgId>{msgid}</MsgId></xml>"
    )


def signed_query():
    from wechat import crypto

    ts, nonce = str(int(time.time())), "benchnonce"
    return urlencode({"signature": crypto.signature(env.TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce})


def safe_replay_file(name, count, msgbase):
    """Pre-signed AES pushes (msg_signature covers each ciphertext)."""
    from wechat.sandbox import signing

    path = VAR / f"safe-replay-{name}.txt"
    now = int(time.time())
    lines = []
    for i in range(count):
        xml = body_template(now).replace("{openid}", f"o_bench_{i % 997}").replace("{msgid}", str(msgbase + i))
        query, data = signing.signed_request(
            token=env.TOKEN, body=xml, appid=env.APPID, aes_key=env.AES_KEY, mode="safe", timestamp=now
        )
        lines.append(urlencode(query) + "\t" + data.decode("utf-8"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def server_for(case, layout, urls):
    spec = LAYOUTS[layout]
    uvicorn = [str(BENCH_PY), "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"]
    # --no-access-log alone is not enough: Django's root handler makes
    # uvicorn's access logger "have handlers" again; the log config mutes it.
    uvicorn += ["--no-access-log", "--log-config", str(ROOT / "bench" / "uvicorn-log.json")]
    if spec["workers"] > 1:
        uvicorn += ["--workers", str(spec["workers"])]
    peer_env = {"BENCH_TOKEN": env.TOKEN, "BENCH_APPID": env.APPID, "BENCH_AES_KEY": env.AES_KEY}
    if case.startswith("ours"):
        return Server(
            f"{case}-{layout}",
            uvicorn + ["config.asgi:application"],
            env=env.server_env(urls["database"], urls["redis"]),
            cpus=spec["server_cpus"],
            probe=f"/wechat/{env.APPID}/",
        )
    if case == "werobot_sqlite":
        scratch = VAR / f"werobot-{layout}-{time.monotonic_ns()}"
        scratch.mkdir(parents=True)
        return Server(
            f"{case}-{layout}",
            uvicorn + ["bench.peers.werobot_peer:application"],
            env=env.server_env("", "", **peer_env),
            cwd=scratch,
            cpus=spec["server_cpus"],
        )
    return Server(
        f"{case}-{layout}",
        uvicorn + ["bench.peers.django_peer:application"],
        env=env.server_env("", "", **peer_env),
        cpus=spec["server_cpus"],
        probe="/bare/",
    )


def run_case(case, layout, urls, *, duration, warmup, msgbase):
    spec = LAYOUTS[layout]
    path = {"werobot_sqlite": "/", "wechatpy": "/wechatpy/", "django_bare": "/bare/"}.get(case, f"/wechat/{env.APPID}/")
    template = VAR / "push-template.xml"
    template.write_text(body_template(int(time.time())), encoding="utf-8")
    if case == "ours_safe":
        script_args = ["replay", safe_replay_file("run", 4000 * duration, msgbase), spec["threads"]]
        warm_args = ["replay", safe_replay_file("warm", 4000 * warmup, msgbase + 10**9), spec["threads"]]
    else:
        script_args = ["template", template, msgbase]
        warm_args = ["template", template, msgbase + 5 * 10**9]  # ids apart from the measured run
    if case.startswith("ours"):
        env.wipe_traffic()
    with server_for(case, layout, urls) as server:
        url = f"http://127.0.0.1:{server.port}{path}?{signed_query()}"
        common = {"threads": spec["threads"], "connections": CONNECTIONS, "cpus": spec["wrk_cpus"]}
        warm = wrk(url, script=LUA, args=warm_args, duration=warmup, **common)
        result = wrk(url, script=LUA, args=script_args, duration=duration, latency=True, **common)
        time.sleep(0.5)  # let in-flight requests finish before counting rows
        result["peak_rss_mb"] = server.peak_rss_mb()
    result.pop("raw", None)
    if case.startswith("ours"):
        stored = env.counts()
        answered = warm["requests"] + result["requests"]
        result["stored"] = stored["inbound"]
        result["answered"] = answered
        result["duplicates"] = stored["duplicates"]
        # wrk stops counting at the deadline; up to one request per
        # connection may still have been stored after it.
        result["stored_ok"] = answered <= stored["inbound"] <= answered + 2 * CONNECTIONS * spec["threads"]
        result["stored_ok"] = result["stored_ok"] and stored["duplicates"] == 0
    result["non2xx"] += warm["non2xx"]
    return result


def run(urls, *, rounds, duration, warmup, layouts=("pinned", "shared"), cases=CASES):
    results = {layout: {case: [] for case in cases} for layout in layouts}
    msgbase = 10**12
    for layout in layouts:
        for rnd in range(rounds):
            for case in cases:
                msgbase += 10**10
                res = run_case(case, layout, urls, duration=duration, warmup=warmup, msgbase=msgbase)
                results[layout][case].append(res)
                log(f"webhook {layout} round {rnd + 1} {case}: {res['rps']:.0f} req/s, non-2xx {res['non2xx']}")
    return summarise(results)


def summarise(results):
    summary = {}
    for layout, by_case in results.items():
        rows = {}
        for case, runs in by_case.items():
            rps = [r["rps"] for r in runs]
            rows[case] = {
                "rps": statistics.median(rps),
                "rps_runs": rps,
                "p99_ms": statistics.median([r["p99_ms"] or 0 for r in runs]),
                "non2xx": sum(r["non2xx"] + r["socket_errors"] for r in runs),
                "peak_rss_mb": max(max(r["peak_rss_mb"].values(), default=0) for r in runs),
                "stored_ok": all(r.get("stored_ok", True) for r in runs),
                "stored": [f"{r['stored']}/{r['answered']}" for r in runs if "stored" in r],
                "duplicates": [r["duplicates"] for r in runs if "duplicates" in r],
            }
        summary[layout] = rows
    return summary


def in_process(count=1000):
    """One push's cost without HTTP: statements, CPU and wall time per push, in this process.

    Plain text pushes from 997 followers who already have a live conversation
    (the common case), through `wechat.webhook.handle` on the bench database.
    """
    from django.db import connection
    from django.http import QueryDict
    from django.test.utils import CaptureQueriesContext

    from wechat import webhook

    env.wipe_traffic()
    query = QueryDict(signed_query())
    template = body_template(int(time.time()))

    def push(msgid):
        body = template.replace("{openid}", f"o_bench_{msgid % 997}").replace("{msgid}", str(msgid)).encode()
        answer = webhook.handle(env.APPID, "POST", query, body, content_length=len(body))
        assert answer.status == 200, answer

    for i in range(997):  # every follower known, every conversation live
        push(9 * 10**12 + i)
    with CaptureQueriesContext(connection) as queries:
        for i in range(100):
            push(9 * 10**12 + 10**6 + i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(count):
        push(9 * 10**12 + 2 * 10**6 + i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    env.wipe_traffic()
    return {
        "pushes": count,
        "statements_per_push": len(queries.captured_queries) / 100,
        "statements": sorted({q["sql"].split(" ", 1)[0] for q in queries.captured_queries}),
        "cpu_ms_per_push": cpu / count * 1000,
        "wall_ms_per_push": wall / count * 1000,
    }
