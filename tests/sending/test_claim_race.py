"""Two workers racing for one follower's backlog: the second waits for the first's claim and sees it."""

import threading
import time

import pytest
from django.db import connection, transaction

from tests.conftest import post_push, text_xml
from wechat import outbound
from wechat.models import Contact, OutboundMessage

pytestmark = pytest.mark.django_db(transaction=True)
S = OutboundMessage.Status


def test_a_claim_that_waited_for_the_lock_sees_the_message_in_flight(client, account):
    post_push(client, text_xml("在吗", msg_id="4242"))
    contact = Contact.objects.get()
    first = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "第一条"})
    second = outbound.queue_message(account=account, contact=contact, msgtype="text", data={"content": "第二条"})

    holding = threading.Event()
    results = {}

    def worker_a():
        # Claims the first message the way claim_next does and holds the lock a moment.
        try:
            with transaction.atomic():
                outbound._lock_contact(contact.pk)
                OutboundMessage.objects.filter(pk=first.pk).update(status=S.SENDING, worker="a")
                holding.set()
                time.sleep(0.8)
        finally:
            connection.close()

    def worker_b():
        holding.wait(5)
        try:
            results["claimed"] = outbound.claim_next(contact_id=contact.pk, worker="b")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    # B waited behind A's lock; once A committed, the first message is in
    # flight, so the second must not go out before it.
    assert results["claimed"] is None
    assert OutboundMessage.objects.get(pk=second.pk).status == S.QUEUED
