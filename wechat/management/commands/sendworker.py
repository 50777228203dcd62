from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wechat import live
from wechat.worker import DEFAULT_QUEUES, SendWorker


class Command(BaseCommand):
    help = "Run the send worker: task threads (delivery, typing, media downloads) plus the ledger sweeper."

    def add_arguments(self, parser):
        parser.add_argument(
            "--threads", type=int, default=None, help="Task threads (default: SEND_WORKER_THREADS setting)."
        )
        parser.add_argument("--queues", default=",".join(DEFAULT_QUEUES), help="Comma-separated task queues.")
        parser.add_argument("--interval", type=float, default=0.5, help="Idle poll interval per thread, seconds.")
        parser.add_argument("--sweep-interval", type=float, default=5.0, help="Seconds between sweeps.")

    def handle(self, *args, threads, queues, interval, sweep_interval, **options):
        threads = threads if threads is not None else settings.SEND_WORKER_THREADS
        if threads < 1:
            raise CommandError("--threads must be at least 1")
        if interval < 0 or sweep_interval <= 0:
            raise CommandError("--interval must be >= 0 and --sweep-interval > 0")
        queue_names = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = set(queue_names) - set(settings.TASKS["default"].get("QUEUES", queue_names))
        if unknown:
            raise CommandError(f"unknown queue(s): {', '.join(sorted(unknown))}")
        # A lease shorter than one bounded call (token refresh + send) would
        # let the sweeper call a healthy in-flight send unknown.
        bound = 2 * (settings.WECHAT_CONNECT_TIMEOUT + settings.WECHAT_READ_TIMEOUT)
        if bound >= settings.SEND_LEASE_SECONDS:
            self.stderr.write(
                f"warning: SEND_LEASE_SECONDS={settings.SEND_LEASE_SECONDS} is not above {bound:g} s "
                "(2 × connect + read timeout); slow sends may be marked unknown"
            )
        worker = SendWorker(threads=threads, queues=queue_names, interval=interval, sweep_interval=sweep_interval)
        worker.install_signals()
        live.start_background_publisher()
        self.stdout.write(f"sendworker {worker.id}: {threads} threads, queues {','.join(queue_names)}")
        self.stdout.flush()
        worker.run()
