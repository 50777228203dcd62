"""django-tasks-rq's backend, accepting (and ignoring) task priorities, for bench/tasks_backend.py only.

RQBackend refuses tasks declared with a priority (InvalidTaskError at import of
wechat/tasks.py); RQ orders work by the order of the queues a worker listens
to instead. Switching for real would mean dropping the priorities there.
"""

from django_tasks_rq import RQBackend as _RQBackend


class RQBackend(_RQBackend):
    supports_priority = True
