"""The production path with real processes: several uvicorn web processes and send workers on PostgreSQL + Redis.

Skipped (with the reason) unless REDIS_URL and a PostgreSQL DATABASE_URL are
set, as in the second pass of `make test`. Kill -9 of a send worker mid-send
is covered by tests/sending/test_worker_processes.py
(test_kill_9_mid_send_leaves_the_message_unknown_not_lost_not_duplicated),
which runs in both passes; it is not repeated here.
"""
