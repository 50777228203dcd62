"""What the worker's main thread does between tasks: media re-enqueue and task-row pruning."""

from datetime import timedelta

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from wechat import media, tasks
from wechat.models import Contact, InboundMessage
from wechat.worker import KEEP_SUCCESSFUL, SendWorker


def pending_image(account, received_at):
    contact = Contact.objects.create(account=account, openid="o_pic")
    return InboundMessage.objects.create(
        account=account,
        contact=contact,
        msg_type="image",
        from_user="o_pic",
        create_time=1,
        sent_at=received_at,
        received_at=received_at,
        media_id="MEDIA",
        media_status="pending",
    )


def test_a_pending_download_whose_task_died_is_enqueued_again(account):
    message = pending_image(account, timezone.now() - timedelta(minutes=5))
    assert media.sweep() == 1
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["kwargs"] == {"inbound_id": message.pk}
    assert media.sweep() == 0  # a task is waiting: no duplicate


def test_a_fresh_pending_download_is_left_to_its_own_task(account):
    pending_image(account, timezone.now())
    assert media.sweep() == 0


def test_old_finished_task_rows_are_pruned_and_recent_ones_kept(account):
    old = tasks.deliver.enqueue(contact_id=1)
    recent = tasks.deliver.enqueue(contact_id=2)
    DBTaskResult.objects.filter(pk=old.id).update(
        status="SUCCESSFUL", finished_at=timezone.now() - KEEP_SUCCESSFUL - timedelta(minutes=1)
    )
    DBTaskResult.objects.filter(pk=recent.id).update(status="SUCCESSFUL", finished_at=timezone.now())
    SendWorker(threads=1)._prune()
    assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [recent.db_result.pk]
