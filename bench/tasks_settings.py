"""Settings for bench/tasks_backend.py: the project's own, plus RQ when BENCH_TASKS=rq.

Never used by the console itself; the RQ packages live only in the bench's
separate virtualenv (var/bench-tasks-venv).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, TASKS

if os.environ.get("BENCH_TASKS") == "rq":
    INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]
    TASKS = {"default": {**TASKS["default"], "BACKEND": "bench.tasks_rq.RQBackend"}}
    RQ_QUEUES = {name: {"URL": os.environ["BENCH_RQ_URL"]} for name in TASKS["default"]["QUEUES"]}
