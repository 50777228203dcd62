"""/healthz names the failing part, answers in bounded time and never shows a credential.

The failures are real: a redis-server of the test's own is stopped, and the
database is reached through a TCP link the test cuts or silences. Bounded time
is shown by behaviour, not by a stopwatch: against a peer that accepts and never
answers, the only way to get an answer at all is the probe's own deadline.
"""

import pytest
import requests

from tests.multiprocess.procs import Link, PrivateRedis, database_via, needs_redis_server, unique_prefix
from tests.sending.live import Server, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PARTS = {"database", "channel_layer", "queue"}


def health(server):
    # The client's timeout only keeps a broken build from hanging the suite.
    response = requests.get(f"{server.base}/healthz", timeout=30)
    return response.status_code, response.json(), response.text


def test_it_answers_200_with_every_part_named_and_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True and report["failing"] == []
    assert set(report["parts"]) == PARTS
    assert all(part["status"] == "ok" for part in report["parts"].values())
    assert response["Cache-Control"] == "no-store"


def test_it_reports_the_queue_backlog_without_failing_on_it(client, account):
    from wechat import tasks

    tasks.deliver.enqueue(contact_id=1)
    report = client.get("/healthz").json()
    assert report["parts"]["queue"]["status"] == "ok"
    assert report["parts"]["queue"]["ready"] >= 1


@needs_redis_server()
@pytest.mark.multiprocess
def test_it_names_the_channel_layer_when_redis_is_stopped_and_recovers_when_it_is_back(tmp_path):
    redis = PrivateRedis().start()
    server = Server(tmp_path, REDIS_URL=redis.url, CHANNEL_LAYER_PREFIX=unique_prefix(), HEALTHZ_TIMEOUT=2)
    try:
        wait_until(lambda: health(server)[0] == 200, timeout=30, what="a green /healthz")
        assert health(server)[1]["parts"]["channel_layer"]["backend"] == "RedisPubSubChannelLayer"

        redis.stop()
        status, report, text = health(server)
        assert status == 503
        assert report["failing"] == ["channel_layer"]
        assert report["parts"]["channel_layer"]["error"]
        assert redis.password not in text

        redis.start()
        wait_until(lambda: health(server)[0] == 200, timeout=30, what="/healthz to be green again")
    finally:
        server.stop()
        redis.stop()


@needs_redis_server()
@pytest.mark.multiprocess
def test_a_redis_that_accepts_and_never_answers_costs_the_deadline_not_a_hang(tmp_path):
    redis = PrivateRedis().start()
    link = Link("127.0.0.1", redis.port)
    url = f"redis://:{redis.password}@127.0.0.1:{link.port}/0"
    server = Server(tmp_path, REDIS_URL=url, CHANNEL_LAYER_PREFIX=unique_prefix(), HEALTHZ_TIMEOUT=2)
    try:
        wait_until(lambda: health(server)[0] == 200, timeout=30, what="a green /healthz")
        link.silent()
        status, report, text = health(server)
        assert status == 503 and report["failing"] == ["channel_layer"]
        assert report["parts"]["channel_layer"]["error"] == "no answer within 2 s"
        assert redis.password not in text
    finally:
        server.stop()
        link.close()
        redis.stop()


@pytest.fixture
def postgres():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the database can be cut off only when it is a server: runs in the PostgreSQL + Redis pass")
    return connection.settings_dict


@pytest.mark.multiprocess
def test_it_names_the_database_and_the_queue_when_the_database_is_unreachable(tmp_path, postgres):
    link = Link(postgres.get("HOST") or "127.0.0.1", postgres.get("PORT") or 5432)
    # The throwaway server trusts loopback, so any password is accepted — and must never be shown.
    url = database_via(link).replace("postgres://postgres@", "postgres://postgres:pg-Pass-w0rd@")
    server = Server(tmp_path, DATABASE_URL=url, HEALTHZ_TIMEOUT=2)
    try:
        wait_until(lambda: health(server)[0] == 200, timeout=30, what="a green /healthz")

        link.down()
        status, report, text = health(server)
        assert status == 503
        assert set(report["failing"]) == {"database", "queue"}
        assert report["parts"]["channel_layer"]["status"] == "ok"
        assert "pg-Pass-w0rd" not in text

        link.silent()
        status, report, text = health(server)
        assert status == 503 and "database" in report["failing"]
        assert report["parts"]["database"]["error"] == "no answer within 2 s"

        link.open()
        wait_until(lambda: health(server)[0] == 200, timeout=30, what="/healthz to be green again")
    finally:
        server.stop()
        link.close()
