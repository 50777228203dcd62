"""WeRoBot with its default session store (SQLite, one commit per message).

The handler keeps the follower's last message in the session, the way
WeRoBot's docs use sessions, so each push costs a read and a committed write —
the peer that, like us, stores something per message. Served by the same
uvicorn as ours:
    uvicorn bench.peers.werobot_peer:application
through uvicorn's WSGI adapter with ONE thread per worker process: WeRoBot's
SQLite session store shares one sqlite3 connection between threads
(check_same_thread=False), so the adapter's default 10 threads end in
"database is locked" errors. One thread per process is how WeRoBot is
deployed (a sync worker). Run it from a scratch directory: the session file
is created in the cwd.
"""

import logging
import os
import warnings

import werobot

TOKEN = os.environ.get("BENCH_TOKEN", "bench-token")

# WeRoBot logs a warning for every handler that returns no reply.
logging.getLogger("WeRoBot").setLevel(logging.ERROR)

robot = werobot.WeRoBot(token=TOKEN)


@robot.text
def remember(message, session):
    session["last"] = message.content


app = robot.wsgi

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from uvicorn.middleware.wsgi import WSGIMiddleware

    application = WSGIMiddleware(app, workers=1)
