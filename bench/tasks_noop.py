"""The no-op task of bench/tasks_backend.py's queue-overhead case (imported by workers by module path)."""

from django_tasks import task


@task(queue_name="default")
def noop(n):
    return n
