"""The send worker process: task threads plus the sweeper (`python manage.py sendworker`).

Each thread runs django-tasks-db's own `Worker` loop (claim a task row, run
it, record the result), so several sends are in flight at once — WeChat
answers in 50–200 ms, and the threads spend that time waiting on the network.
The main thread runs the sweepers — the ledger's (`outbound.sweep`), the
inbound media downloads' (`media.sweep`), an hourly prune of old finished task
rows — and owns the signals: SIGTERM/SIGINT let every thread finish the task in hand and stop;
a second signal exits at once (in-flight rows then become `unknown` when their
lease runs out — never resent blindly).
"""

import logging
import os
import signal
import socket
import threading
import time
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker

from wechat import client, media, outbound

log = logging.getLogger("wechat.worker")

DEFAULT_QUEUES = ("send", "media", "default")
PRUNE_EVERY = 3600  # seconds
KEEP_SUCCESSFUL = timedelta(days=1)
KEEP_FAILED = timedelta(days=7)


class _ThreadWorker(Worker):
    """django-tasks-db's loop, minus its signal handling (only the main thread may own signals)."""

    def configure_signals(self):
        pass


class SendWorker:
    def __init__(self, *, threads, queues=DEFAULT_QUEUES, interval=0.5, sweep_interval=5.0, backend="default"):
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self.queues = list(queues)
        self.interval = interval
        self.sweep_interval = sweep_interval
        self.backend = backend
        self.stopping = threading.Event()
        self._workers = []
        self._threads = []
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self._pruned_at = float("-inf")

    def run(self):
        """Start the threads, sweep until asked to stop, then wait for the threads."""
        client.configure(pool_size=self.threads + 4)
        # Each task thread holds a database connection for the whole task; the
        # main thread sweeps. A smaller pool would park the surplus threads in
        # the pool's queue (and time them out) however many --threads says.
        size_database_pool(self.threads + 2)
        for index in range(1, self.threads + 1):
            worker = _ThreadWorker(
                queue_names=self.queues,
                interval=self.interval,
                batch=False,
                backend_name=self.backend,
                startup_delay=True,
                max_tasks=None,
                worker_id=f"{self.id}:{index}"[-64:],
                excluded_queue_names=[],
            )
            thread = threading.Thread(target=self._thread_main, args=(worker,), name=f"sendworker-{index}", daemon=True)
            self._workers.append(worker)
            self._threads.append(thread)
            thread.start()
        log.info("send worker %s started: %s threads on queues %s", self.id, self.threads, ",".join(self.queues))
        try:
            while not self.stopping.is_set():
                self._sweep()
                self.stopping.wait(self.sweep_interval)
        finally:
            for worker in self._workers:
                worker.running = False
            for thread in self._threads:
                thread.join()
            connection.close()
            log.info("send worker %s stopped", self.id)

    def stop(self, *_args):
        if self.stopping.is_set():
            log.warning("second stop signal: exiting now")
            os._exit(1)
        log.info("stopping: letting %s thread(s) finish the task in hand", self.threads)
        self.stopping.set()
        for worker in self._workers:
            worker.running = False

    def install_signals(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _thread_main(self, worker):
        try:
            worker.run()
        except Exception:
            log.exception("worker thread %s died", threading.current_thread().name)
        finally:
            connection.close()

    def _sweep(self):
        close_old_connections()
        for name, job in (("ledger", outbound.sweep), ("media", media.sweep), ("tasks", self._prune)):
            try:
                job()
            except Exception:  # the next sweep tries again
                log.exception("%s sweep failed", name)

    def _prune(self):
        """Finished task rows are bookkeeping (the ledger is the record): drop old ones, hourly."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        from django_tasks_db.models import DBTaskResult

        cutoff = timezone.now()
        done = DBTaskResult.objects.filter(queue_name__in=self.queues)
        deleted, _ = done.successful().filter(finished_at__lte=cutoff - KEEP_SUCCESSFUL).delete()
        failed, _ = done.failed().filter(finished_at__lte=cutoff - KEEP_FAILED).delete()
        if deleted or failed:
            log.info("pruned %s finished and %s failed task rows", deleted, failed)


def size_database_pool(size, *, alias=DEFAULT_DB_ALIAS):
    """Make a PostgreSQL connection pool (settings OPTIONS["pool"]) hold at least `size` connections.

    Returns the pool's max_size now in force, or None without a pool. A pool
    already opened in this process with fewer is closed; the next connection
    opens a new one.
    """
    wrapper = connections[alias]
    options = wrapper.settings_dict.get("OPTIONS") or {}
    pool = options.get("pool")
    if not pool:
        return None
    if pool is True:
        pool = options["pool"] = {}
    current = pool.get("max_size") or pool.get("min_size") or 4  # psycopg_pool's default
    if current >= size:
        return current
    pool["max_size"] = size
    if wrapper.alias in type(wrapper)._connection_pools:
        wrapper.close_pool()
    log.info("database pool for %s sized to %s connections", alias, size)
    return size
