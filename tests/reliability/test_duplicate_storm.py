"""A storm of concurrent duplicate pushes against real uvicorn with 2 workers.

WeChat retries a push it got no answer for (§6.5); under load the retries of
one push can arrive at two worker processes at the same instant. The unique
constraints decide: exactly one row (and one live update, one conversation)
per push, every request answered `success`. Meant for PostgreSQL (make
test-postgres); on SQLite it runs too and proves the same thing there.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import APPID, ORIGINAL_ID, TOKEN
from tests.reliability.servers import Uvicorn, request
from wechat.models import Contact, Conversation, InboundMessage, LiveUpdate
from wechat.sandbox import signing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]

DISTINCT = 30
COPIES = 8


@pytest.fixture(scope="module")
def two_workers(django_db_setup):
    live = Uvicorn(workers=2).start()
    yield live
    live.stop()


def distinct_pushes(now):
    pushes = []
    for i in range(DISTINCT):
        openid = f"o_storm_{i % 10}"
        if i % 3 == 2:
            # Events have no MsgId: de-duplicated by (sender, time, event).
            fields = {"Event": "CLICK", "EventKey": f"MENU_{i}"}
            xml = signing.push_xml(
                to_user=ORIGINAL_ID, from_user=openid, msg_type="event", create_time=now - i, fields=fields
            )
        else:
            fields = {"Content": f"风暴 {i}", "MsgId": str(7_000_000 + i)}
            xml = signing.push_xml(
                to_user=ORIGINAL_ID, from_user=openid, msg_type="text", create_time=now, fields=fields
            )
        query, data = signing.signed_request(token=TOKEN, body=xml, timestamp=now)
        pushes.append((f"/wechat/{APPID}/?" + "&".join(f"{k}={v}" for k, v in query.items()), data))
    return pushes


def test_every_copy_is_answered_and_each_push_is_stored_once(two_workers, account):
    import time

    pushes = distinct_pushes(int(time.time()))
    barrier = threading.Barrier(32)

    def deliver(job):
        index, (path, data) = job
        if index < 32:
            barrier.wait(timeout=30)  # the first wave arrives at once
        return request(two_workers.port, "POST", path, data, {"Content-Type": "text/xml"})

    # Copies interleaved so that the same push is in flight on many
    # connections (and both workers) at the same moment.
    jobs = list(enumerate(p for _ in range(COPIES) for p in pushes))
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(deliver, jobs))

    assert [(status, body) for status, _, body in answers] == [(200, b"success")] * (DISTINCT * COPIES)
    assert InboundMessage.objects.count() == DISTINCT
    assert InboundMessage.objects.filter(msg_id__isnull=True).count() == DISTINCT // 3
    assert LiveUpdate.objects.filter(kind="inbound").count() == DISTINCT
    assert Contact.objects.count() == 10
    assert Conversation.objects.count() == 10
    account.refresh_from_db()
    assert account.duplicate_pushes == DISTINCT * (COPIES - 1)
