"""`make bench`: every benchmark and the long reliability runs, then docs/benchmarks.md.

    .venv/bin/python bench/run.py                 # the full default run (~20 min)
    .venv/bin/python bench/run.py --quick         # short runs, for developing the harness
    .venv/bin/python bench/run.py --only webhook  # one phase
    .venv/bin/python bench/run.py --soak-minutes 30

Method: /work/shared/benchmarks.md — ratios measured side by side in one run,
pinned and shared layouts, open-loop paced senders for latency, loopback only,
bounded. Results also go to var/bench/results.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import env, report  # noqa: E402
from bench.common import VAR, log, machine  # noqa: E402

PHASES = ["webhook", "fanout", "sendworker", "listpage", "reliability", "soak"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs for developing the harness")
    parser.add_argument("--only", action="append", choices=PHASES, help="run only these phases")
    parser.add_argument("--rounds", type=int, default=None, help="webhook rounds per layout (default 2)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per measured webhook run (default 10)")
    parser.add_argument(
        "--soak-minutes", type=float, default=None, help="soak length (default 3; 30 for the full soak)"
    )
    parser.add_argument(
        "--list-sizes", default=None, help="conversation-list data sizes (default 10000,100000,1000000)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)

    quick = args.quick
    phases = args.only or PHASES
    started = time.time()
    VAR.mkdir(parents=True, exist_ok=True)
    env.ensure_bench_venv()
    database_url, redis_url, _extra = env.start_services()
    bench_url = env.bench_database_url(database_url)
    env.create_database(database_url)
    env.prepare(bench_url, redis_url)
    env.bench_account()
    urls = {"database": bench_url, "redis": redis_url}

    results = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": quick}
    results["settings"] = {"phases": phases}
    if "webhook" in phases:
        from bench import webhook

        rounds = args.rounds or (1 if quick else 2)
        duration = args.duration or (3 if quick else 10)
        results["settings"]["webhook"] = {"rounds": rounds, "duration_s": duration, "connections": webhook.CONNECTIONS}
        results["webhook"] = webhook.run(urls, rounds=rounds, duration=duration, warmup=1 if quick else 3)
        results["webhook_in_process"] = webhook.in_process(count=300 if quick else 2000)
    if "fanout" in phases:
        from bench import fanout

        seconds = 5 if quick else 20
        results["settings"]["fanout"] = {"seconds": seconds}
        # The anchor load of benchmarks.md first, then the target load.
        results["fanout"] = [
            fanout.run(urls, agent_count=agents, rate=rate, seconds=seconds) for agents, rate in ((10, 50), (50, 100))
        ]
    if "sendworker" in phases:
        from bench import sendworker

        count = 60 if quick else 400
        results["sendworker"] = sendworker.run(urls, follower_count=count)
    if "listpage" in phases:
        from bench import listpage

        steps = listpage.STEPS
        if args.list_sizes:
            sizes = [int(x) for x in args.list_sizes.split(",")]
            steps = [(m // 10, m) for m in sizes]
        elif quick:
            steps = steps[:2]
        results["listpage"] = listpage.run(steps)
    if "reliability" in phases:
        from bench import reliability

        results["reliability"] = {"pg_restart": reliability.run(urls, pushes=150 if quick else 400)}
    if "soak" in phases:
        from bench import soak

        minutes = args.soak_minutes if args.soak_minutes is not None else (1 if quick else 3)
        results["soak"] = soak.run(urls, minutes=minutes)
    results["elapsed_s"] = round(time.time() - started)
    (VAR / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    if not args.no_docs:
        report.write(results)
    log(f"done in {results['elapsed_s']} s")


if __name__ == "__main__":
    main()
