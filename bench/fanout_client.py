"""Load generator of benchmark 2, run as its own process by bench/fanout.py.

N agents connect to the inbox websocket with their session cookies; an
open-loop sender POSTs one signed push every 1/rate s (scheduled times, not
"when the last one finished", so queueing shows up as latency). Each push
carries its scheduled send time; each agent notes when the live event
reached it. Afterwards every agent catches up from the database feed (what a
browser does after a gap) so that an event lost on the channel layer is told
apart from one lost for good.

Input: one JSON object on stdin. Output: one JSON object on stdout.
"""

import asyncio
import hashlib
import json
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import websockets

TEMPLATE = (
    "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
    "<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[bench#{run}.{seq}@{sent:.6f}]]></Content><MsgId>{msgid}</MsgId></xml>"
)


class Agent:
    def __init__(self, index, cookie, run):
        self.index = index
        self.cookie = cookie
        self.run_id = run
        self.latencies = {}
        self.foreign = 0  # live events not from this run's pushes (must stay 0)
        self.ws = None
        self.ready = asyncio.Event()
        self.caught_up = asyncio.Queue()

    async def run(self, url, origin, stop):
        headers = {"Cookie": f"sessionid={self.cookie}"}
        async with websockets.connect(url, additional_headers=headers, origin=origin, max_queue=None) as ws:
            self.ws = ws
            async for raw in ws:
                now = time.time()
                event = json.loads(raw)
                if event.get("type") == "hello":
                    self.ready.set()
                elif event.get("type") == "live":
                    seq, sent = _marker(event, self.run_id)
                    if seq is not None:
                        self.latencies.setdefault(seq, (now - sent) * 1000)
                    else:
                        self.foreign += 1
                elif event.get("type") == "caught_up":
                    self.caught_up.put_nowait(event)

    async def catch_up(self, after):
        """Ask for the feed after `after`; returns the seqs found there."""
        seqs = set()
        while True:
            await self.ws.send(json.dumps({"type": "catch_up", "after": after}))
            reply = await asyncio.wait_for(self.caught_up.get(), 30)
            for update in reply["updates"]:
                after = max(after, update["id"])
                if update.get("kind") == "inbound":
                    seq, _ = _marker(update, self.run_id)
                    if seq is not None:
                        seqs.add(seq)
            if not reply.get("more"):
                return seqs


def _marker(event, run):
    """(seq, scheduled send time) of a push of run `run`, else (None, None)."""
    if event.get("kind") != "inbound":
        return None, None
    preview = (event.get("data") or {}).get("preview", "")
    prefix = f"bench#{run}."
    if not preview.startswith(prefix):
        return None, None
    seq, _, sent = preview[len(prefix) :].partition("@")
    return int(seq), float(sent)


class Sender:
    """Posts pushes. With `token`, every push is signed afresh, as WeChat signs each one:
    a query signed once goes stale after WECHAT_TIMESTAMP_TOLERANCE (300 s) and a long run
    (the 30-minute soak) would be refused from then on."""

    def __init__(self, host, port, path, token=None):
        self.host, self.port, self.token = host, port, token
        self.base_path = path.partition("?")[0] if token else path
        self.idle = []
        self.statuses = {}

    @property
    def path(self):
        if not self.token:
            return self.base_path
        timestamp, nonce = str(int(time.time())), "soak"
        signature = hashlib.sha1("".join(sorted([self.token, timestamp, nonce])).encode()).hexdigest()  # noqa: S324 (WeChat's scheme)
        return f"{self.base_path}?signature={signature}&timestamp={timestamp}&nonce={nonce}"

    async def post(self, seq, body):
        # A kept-alive connection the server closed while idle (uvicorn's
        # keep-alive timeout) fails on reuse: retry once on a new one, as
        # every HTTP client does. A failure on a new connection is counted.
        if self.idle:
            reader, writer = self.idle.pop()
            status = await self._exchange(reader, writer, body)
            if status:
                self.statuses[seq] = status
                return
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.statuses[seq] = await self._exchange(reader, writer, body)

    async def _exchange(self, reader, writer, body):
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            status = int(status_line.split()[1])
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            writer.close()
            return 0
        self.idle.append((reader, writer))
        return status


async def main(cfg):
    stop = asyncio.Event()
    run = uuid.uuid4().hex[:8]  # tells this run's pushes from any other traffic
    agents = [Agent(i, cookie, run) for i, cookie in enumerate(cfg["cookies"])]
    ws_url = f"ws://127.0.0.1:{cfg['port']}/ws/inbox/"
    origin = f"http://127.0.0.1:{cfg['port']}"
    tasks = [asyncio.create_task(a.run(ws_url, origin, stop)) for a in agents]
    await asyncio.wait_for(asyncio.gather(*(a.ready.wait() for a in agents)), 60)

    sender = Sender("127.0.0.1", cfg["port"], cfg["path"], token=cfg.get("token"))
    rate, count = cfg["rate"], int(cfg["rate"] * cfg["seconds"])
    start = time.time() + 0.5
    server_pids = cfg.get("server_pids", [])
    cpu_before = (_own_cpu(), {pid: _cpu_of([pid]) for pid in server_pids}, time.monotonic())
    posts = []
    for seq in range(count):
        due = start + seq / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        body = TEMPLATE.format(
            to=cfg["to_user"],
            openid=f"o_fan_{seq % 200}",
            ts=int(due),
            run=run,
            seq=seq,
            sent=due,
            msgid=cfg["msgbase"] + seq,
        ).encode()
        posts.append(asyncio.create_task(sender.post(seq, body)))
    lag = time.time() - (start + (count - 1) / rate)
    await asyncio.gather(*posts)
    await asyncio.sleep(cfg.get("drain", 3))
    stop.set()
    # CPU seconds spent during the send window (plus the drain): the
    # machine is shared, so say how busy the server and this client were.
    window = time.monotonic() - cpu_before[2]
    client_cpu = _own_cpu() - cpu_before[0]
    # Per process too: the two workers split the sockets as the kernel hands them out.
    server_cpu_by_pid = {pid: round(_cpu_of([pid]) - before, 2) for pid, before in cpu_before[1].items()}
    server_cpu = sum(server_cpu_by_pid.values())

    caught = await asyncio.gather(*(a.catch_up(cfg["after_id"]) for a in agents))
    for task in tasks:
        task.cancel()
    latencies = sorted(v for a in agents for v in a.latencies.values())
    live_missing = sum(count - len(a.latencies) for a in agents)
    final_missing = sum(
        len(set(range(count)) - set(a.latencies) - seqs) for a, seqs in zip(agents, caught, strict=True)
    )
    return {
        "agents": len(agents),
        "rate": rate,
        "messages": count,
        "sender_lag_s": round(lag, 3),
        "non2xx": sum(1 for s in sender.statuses.values() if not 200 <= s < 300),
        "deliveries_expected": count * len(agents),
        "delivered_live": len(latencies),
        "missing_live": live_missing,
        "missing_after_catch_up": final_missing,
        "p50_ms": _pct(latencies, 50),
        "p90_ms": _pct(latencies, 90),
        "p99_ms": _pct(latencies, 99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "foreign_live": sum(a.foreign for a in agents),
        "window_s": round(window, 2),
        "client_cpu_s": round(client_cpu, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_by_pid": server_cpu_by_pid,
        "loadavg_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_of(pids):
    """utime + stime of these processes, in seconds (0 for one that is gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _pct(values, pct):
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * pct / 100))], 1)


def _run(coroutine):
    """On uvloop when the bench venv has it (the server runs on it too): the
    client is the cheaper for it, so it is less a part of what is measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine), "asyncio"
    return uvloop.run(coroutine), "uvloop"


if __name__ == "__main__":
    config = json.load(sys.stdin)
    result, loop_name = _run(main(config))
    result["client_loop"] = loop_name
    print(json.dumps(result))
