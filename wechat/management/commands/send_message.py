import json
import time
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wechat import builders, outbound, window
from wechat.models import Contact, OfficialAccount, OutboundMessage

FINAL = {OutboundMessage.Status.SENT, OutboundMessage.Status.FAILED, OutboundMessage.Status.UNKNOWN}


class Command(BaseCommand):
    help = (
        "Queue a customer-service message through the same builders, window gate and ledger as the console. "
        "Prints the ledger id and status; a refused send exits non-zero with the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="AppID of the official account")
        parser.add_argument("--to", required=True, help="OpenID of the follower")
        parser.add_argument("--type", required=True, choices=builders.MSGTYPES, help="msgtype (§2.2)")
        parser.add_argument("--data", required=True, help='the payload object of §2.2, e.g. {"content": "你好"}')
        parser.add_argument("--kf-account", default="", help="customservice.kf_account (prefix@oa_wechat_id)")
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--delay", type=float, help="send after this many seconds")
        when.add_argument("--at", help="send at this time (ISO 8601; without an offset: Asia/Shanghai)")
        parser.add_argument(
            "--wait", type=float, default=0, help="wait up to this many seconds for the worker's outcome"
        )

    def handle(self, *args, account, to, type, data, kf_account, delay, at, wait, **options):
        now = timezone.now()
        oa = OfficialAccount.objects.filter(appid=account).first()
        if oa is None:
            raise CommandError(f"没有 AppID 为 {account} 的公众号")
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise CommandError(f"--data 不是合法的 JSON：{exc}") from None
        send_at = None
        if delay is not None:
            if delay < 0:
                raise CommandError("--delay 不能是负数")
            send_at = now + timedelta(seconds=delay)
        elif at:
            send_at = _parse_time(at)
            if send_at <= now:
                raise CommandError(f"--at {at} 已经过去了")
        contact = Contact.objects.filter(account=oa, openid=to).first()
        if contact is None:
            raise CommandError(f"拒绝发送：{window.REASON_TEXT[window.NEVER_OPENED]}（{to}）")
        try:
            message = outbound.queue_message(
                account=oa, contact=contact, msgtype=type, data=payload, send_at=send_at, kf_account=kf_account
            )
        except outbound.SendRefused as exc:
            raise CommandError(f"拒绝发送：{exc.message}") from None
        except builders.BuildError as exc:
            raise CommandError(f"消息无效：{exc}") from None
        self.stdout.write(
            f"id={message.pk} status={message.status} send_at={timezone.localtime(message.send_at):%Y-%m-%d %H:%M:%S}"
        )
        if wait > 0:
            message = _wait(message, wait)
            line = f"id={message.pk} status={message.status}"
            if message.reason:
                line += f" reason={message.reason}"
            self.stdout.write(line)
            if message.status == OutboundMessage.Status.FAILED:
                raise CommandError(f"发送失败：{message.reason}")


def _parse_time(text):
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at 时间格式不对：{text}（例：2026-01-31T09:30）") from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def _wait(message, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.status in FINAL:
            break
        time.sleep(0.1)
    return message
