"""Operators find failed sends, understand them, export them and resend one."""

import csv
import io
from datetime import datetime, time, timedelta

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from tests.admin.conftest import open_window, outbound
from wechat import errors
from wechat.models import AuditLog, OutboundMessage, SendLog

CHANGELIST = "/admin/wechat/outboundmessage/"


def yesterday_noon():
    day = timezone.localdate() - timedelta(days=1)
    return datetime.combine(day, time(12, 0), tzinfo=timezone.get_current_timezone())


def parse_csv(response):
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(body[1:])))


def shown(response):
    return [m.pk for m in response.context["cl"].result_list]


def test_yesterdays_failures_are_found_by_errcode_and_explained(operator_client, account, contact):
    wanted = outbound(account, contact, status="failed", errcode=45015, text="昨天的回复", created_at=yesterday_noon())
    outbound(account, contact, status="failed", errcode=45015, text="今天的回复")
    outbound(account, contact, status="failed", errcode=40003, created_at=yesterday_noon())
    outbound(account, contact, status="sent", created_at=yesterday_noon())
    response = operator_client.get(CHANGELIST, {"status__exact": "failed", "code": "45015", "day": "yesterday"})
    assert response.status_code == 200
    assert shown(response) == [wanted.pk]
    html = response.content.decode()
    assert errors.describe(45015) in html
    # The errcode filter offers only codes that occurred, each with its meaning.
    assert f"40003 · {errors.describe(40003)}" in html


def test_messages_are_found_by_openid_and_text(operator_client, account, contact):
    other = contact.__class__.objects.create(account=account, openid="o_someone_else")
    mine = outbound(account, contact, text="订单已发货")
    outbound(account, other, text="别的消息")
    assert shown(operator_client.get(CHANGELIST, {"q": "o_follower_0001"})) == [mine.pk]
    assert shown(operator_client.get(CHANGELIST, {"q": "发货"})) == [mine.pk]


def test_the_filtered_changelist_exports_as_csv_with_the_reasons(operator_client, account, contact):
    failed = outbound(account, contact, status="failed", errcode=45047, text="第六条=回复", created_at=yesterday_noon())
    outbound(account, contact, status="sent", text="成功的不导出")
    response = operator_client.get(CHANGELIST + "export.csv", {"status__exact": "failed", "day": "yesterday"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *rows = parse_csv(response)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row["编号"] == str(failed.pk)
    assert row["OpenID"] == "o_follower_0001"
    assert row["内容"] == "第六条=回复"
    assert row["errcode"] == "45047"
    assert row["原因说明"] == errors.describe(45047)
    assert row["状态"] == "失败"
    assert row["创建时间"] == f"{yesterday_noon():%Y-%m-%d} 12:00:00"


def test_the_export_action_exports_the_selected_rows(operator_client, account, contact):
    a = outbound(account, contact, status="unknown", text='=HYPERLINK("x")')
    outbound(account, contact, status="failed", errcode=40003)
    response = operator_client.post(CHANGELIST, {"action": "export_csv", ACTION_CHECKBOX_NAME: [a.pk]})
    header, *rows = parse_csv(response)
    assert [r[0] for r in rows] == [str(a.pk)]
    # A follower's text must not become an Excel formula.
    assert dict(zip(header, rows[0], strict=True))["内容"] == '\'=HYPERLINK("x")'


def test_the_send_log_never_shows_a_token(operator_client, account, contact):
    message = outbound(account, contact, status="failed", errcode=40001)
    SendLog.objects.create(
        outbound=message,
        account=account,
        endpoint="/cgi-bin/message/custom/send?access_token=LEAKED-TOKEN-123",
        request_body='{"secret": "LEAKED-SECRET-456"}',
        errcode=40001,
        latency_ms=80,
    )
    log = SendLog.objects.get()
    for page in (
        "/admin/wechat/sendlog/",
        f"/admin/wechat/sendlog/{log.pk}/change/",
        f"/admin/wechat/outboundmessage/{message.pk}/change/",
    ):
        html = operator_client.get(page).content.decode()
        assert "LEAKED-TOKEN-123" not in html and "LEAKED-SECRET-456" not in html, page
        assert "/cgi-bin/message/custom/send" in html
    exported = b"".join(operator_client.get("/admin/wechat/sendlog/export.csv").streaming_content).decode()
    assert "LEAKED-TOKEN-123" not in exported
    assert errors.describe(40001) in exported


def test_resend_asks_for_confirmation_first(operator_client, account, contact):
    failed = outbound(account, contact, status="failed", errcode=-1)
    sent = outbound(account, contact, status="sent")
    response = operator_client.post(CHANGELIST, {"action": "resend", ACTION_CHECKBOX_NAME: [failed.pk, sent.pk]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "确认重发" in html
    assert errors.describe(-1) in html
    assert "另有 1 条" in html
    assert OutboundMessage.objects.count() == 2  # nothing happened yet


def test_confirmed_resend_creates_a_new_ledger_row_and_an_audit_record(operator_client, operator, account, contact):
    open_window(contact)
    failed = outbound(account, contact, status="failed", errcode=-1, text="再试一次")
    response = operator_client.post(
        CHANGELIST, {"action": "resend", "post": "yes", ACTION_CHECKBOX_NAME: [failed.pk]}, follow=True
    )
    assert response.status_code == 200
    new = OutboundMessage.objects.get(resend_of=failed)
    assert new.status == "queued"
    assert new.agent == operator
    assert new.payload["text"] == {"content": "再试一次"}
    assert "已重发 1 条消息" in response.content.decode()
    entry = AuditLog.objects.get(action="outbound.resend")
    assert entry.actor == operator and entry.object_id == str(failed.pk)


def test_resend_skips_messages_that_did_not_fail(operator_client, account, contact):
    open_window(contact)
    sent = outbound(account, contact, status="sent")
    response = operator_client.post(
        CHANGELIST, {"action": "resend", "post": "yes", ACTION_CHECKBOX_NAME: [sent.pk]}, follow=True
    )
    assert "没有“失败”或“结果未知”的消息" in response.content.decode()
    assert OutboundMessage.objects.count() == 1


def test_a_resend_refused_by_the_window_says_why_and_writes_nothing(operator_client, account, contact):
    failed = outbound(account, contact, status="failed", errcode=45015)  # the window never opened
    response = operator_client.post(
        CHANGELIST, {"action": "resend", "post": "yes", ACTION_CHECKBOX_NAME: [failed.pk]}, follow=True
    )
    html = response.content.decode()
    assert f"消息 #{failed.pk} 未重发" in html
    assert "窗口" in html
    assert OutboundMessage.objects.count() == 1
    assert not AuditLog.objects.filter(action="outbound.resend").exists()


def test_the_audit_log_is_read_only_for_operators(operator_client, admin_client, account):
    entry = AuditLog.objects.create(action="conversation.assign", summary="分配给小李")
    assert "分配给小李" in operator_client.get("/admin/wechat/auditlog/").content.decode()
    page = admin_client.get(f"/admin/wechat/auditlog/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert admin_client.post(f"/admin/wechat/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
