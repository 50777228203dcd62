"""Background tasks (Django's Tasks API through django-tasks + django-tasks-db).

Queues: "send" (message delivery, typing) and "media" (inbound downloads).
Tasks carry ids only; the ledger rows decide what happens, so a task run
twice, late, or after its row changed is harmless.
"""

from django_tasks import task

from wechat import media, outbound

# Delivery first when threads are busy: agents wait on it.
SEND_PRIORITY = 10
MEDIA_PRIORITY = 0


@task(queue_name="send", priority=SEND_PRIORITY)
def deliver(contact_id):
    """Deliver a contact's due queued messages in order (see wechat.outbound)."""
    return outbound.deliver_due(contact_id=contact_id)


@task(queue_name="send", priority=SEND_PRIORITY)
def send_typing_task(contact_id):
    return outbound.send_typing(contact_id=contact_id)


@task(queue_name="media", priority=MEDIA_PRIORITY)
def fetch_media(inbound_id):
    return media.fetch_inbound(inbound_id=inbound_id)


def enqueue_delivery(contact_id, *, run_after=None):
    task_ = deliver.using(run_after=run_after) if run_after is not None else deliver
    return task_.enqueue(contact_id=contact_id)


def enqueue_media_fetch(inbound_id, *, run_after=None):
    task_ = fetch_media.using(run_after=run_after) if run_after is not None else fetch_media
    return task_.enqueue(inbound_id=inbound_id)
