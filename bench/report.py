"""docs/benchmarks.md from the results of one run (filled in as phases land)."""

import json

from bench.common import ROOT


def write(results):
    path = ROOT / "docs" / "benchmarks.md"
    path.write_text("```json\n" + json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n```\n")
