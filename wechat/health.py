"""/healthz: the database, the channel layer and the send queue, each named."""

import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _channel_layer():
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = async_to_sync(layer.new_channel)()
    probe = {"type": "health.probe", "id": uuid.uuid4().hex}
    async_to_sync(layer.send)(channel, probe)
    got = async_to_sync(layer.receive)(channel)
    if got.get("id") != probe["id"]:
        raise RuntimeError("channel layer returned a different message")


def _queue():
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.order_by().values("id")[:1].exists()


CHECKS = {"database": _database, "channel_layer": _channel_layer, "queue": _queue}


def check():
    parts = {}
    for name, probe in CHECKS.items():
        try:
            probe()
            parts[name] = "ok"
        except Exception as exc:  # the report names the failing part
            parts[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, state in parts.items() if state != "ok"]
    return {"ok": not failing, "failing": failing, "parts": parts}
