"""The dashboard's figures from rows whose answers are known in advance."""

import itertools
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.admin.conftest import conversation, outbound
from wechat import dashboard, errors
from wechat.dashboard import Period
from wechat.models import Contact, InboundMessage, SendLog

SHANGHAI = timezone.get_fixed_timezone(8 * 60)
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=SHANGHAI)
DAY = Period.last(timedelta(hours=24), now=NOW)
WEEK = Period.last(timedelta(days=7), now=NOW)
_ids = itertools.count(1)


def ago(**kwargs):
    return NOW - timedelta(**kwargs)


@pytest.fixture
def sends(account, contact):
    outbound(account, contact, status="sent", created_at=ago(minutes=70))
    outbound(account, contact, status="sent", created_at=ago(minutes=65))
    outbound(account, contact, status="sent", created_at=ago(minutes=61))
    outbound(account, contact, status="failed", errcode=45015, created_at=ago(minutes=62))
    outbound(account, contact, status="failed", errcode=45015, created_at=ago(hours=2))
    outbound(account, contact, status="unknown", created_at=ago(hours=3))
    outbound(account, contact, status="queued", created_at=ago(minutes=20))
    outbound(account, contact, status="sent", created_at=ago(hours=30))  # in the week only


def test_sends_are_counted_per_local_hour(sends):
    buckets = dashboard.sends_per_hour(DAY)
    assert sum(b["total"] for b in buckets) == 7
    by_hour = {b["hour"].strftime("%H"): b for b in buckets}
    # 11:20, 11:25, 11:29 sent and 11:28 failed, all in the 11 o'clock hour (Asia/Shanghai).
    assert (by_hour["11"]["sent"], by_hour["11"]["failed"], by_hour["11"]["other"]) == (3, 1, 0)
    assert by_hour["12"]["other"] == 1  # the queued one
    assert by_hour["09"]["failed"] == 1  # the unknown one
    assert buckets[0]["hour"] == datetime(2026, 3, 9, 12, 0, tzinfo=SHANGHAI)
    assert len(dashboard.sends_per_hour(WEEK)) == 7 * 24 + 1


def test_success_rate_is_sent_over_finished(sends):
    day = dashboard.success_rate(DAY)
    assert (day["sent"], day["failed"], day["unknown"], day["finished"]) == (3, 2, 1, 6)
    assert day["rate"] == pytest.approx(0.5)
    assert dashboard.success_rate(WEEK)["rate"] == pytest.approx(4 / 7)


def test_no_sends_means_no_rate(db):
    assert dashboard.success_rate(DAY)["rate"] is None


def test_failures_are_grouped_by_errcode_with_their_meaning(sends):
    failures = dashboard.failures_by_errcode(DAY)
    assert [(f["errcode"], f["count"]) for f in failures] == [(45015, 2), (None, 1)]
    assert failures[0]["reason"] == errors.describe(45015)
    assert "结果未知" in failures[1]["reason"]


def test_api_latency_percentiles_use_the_nearest_rank(account):
    for latency in (100, 30, 10, 90, 20, 80, 40, 70, 60, 50):
        SendLog.objects.create(
            account=account, endpoint="/cgi-bin/message/custom/send", latency_ms=latency, created_at=ago(hours=1)
        )
    SendLog.objects.create(account=account, endpoint="/x", latency_ms=None, created_at=ago(hours=1))
    SendLog.objects.create(account=account, endpoint="/x", latency_ms=9000, created_at=ago(days=2))
    latency = dashboard.api_latency(DAY)
    assert (latency["count"], latency["p50"], latency["p95"]) == (10, 50, 100)
    assert dashboard.api_latency(WEEK)["p95"] == 9000


def test_percentile_index_edges():
    assert dashboard.percentile_index(0, 50) is None
    assert dashboard.percentile_index(1, 95) == 0
    assert dashboard.percentile_index(20, 95) == 18
    assert dashboard.percentile_index(20, 50) == 9


def new_contact(account):
    return Contact.objects.create(account=account, openid=f"o_case_{next(_ids)}")


def test_first_response_time_percentiles(account):
    for minutes in (3, 1, 10, 2):
        start = ago(hours=5)
        conversation(
            account, new_contact(account), first_inbound_at=start, first_response_at=start + timedelta(minutes=minutes)
        )
    conversation(account, new_contact(account), first_inbound_at=ago(hours=1))  # nobody answered yet
    conversation(
        account, new_contact(account), first_inbound_at=ago(days=3), first_response_at=ago(days=3) + timedelta(hours=9)
    )  # in the week only
    result = dashboard.first_response(DAY)
    assert result["count"] == 4
    assert result["p50"] == timedelta(minutes=2)
    assert result["p95"] == timedelta(minutes=10)
    assert result["unanswered"] == 1
    assert dashboard.first_response(WEEK)["p95"] == timedelta(hours=9)


def case(account, pushes, *, response=None):
    """A conversation with inbound pushes [(type, event, when)] and an optional first response."""
    contact = new_contact(account)
    asks = [when for kind, event, when in pushes if event != "subscribe"]
    conv = conversation(account, contact, first_inbound_at=min(asks), first_response_at=response)
    for kind, event, when in pushes:
        n = next(_ids)
        InboundMessage.objects.create(
            account=account,
            contact=contact,
            conversation=conv,
            msg_type=kind,
            event=event,
            msg_id=None if kind == "event" else str(n),
            from_user=contact.openid,
            create_time=int(when.timestamp()) + n,
            sent_at=when,
        )
    return conv


def test_conversations_whose_window_closed_unanswered_are_counted(account):
    text, click, follow = ("text", ""), ("event", "CLICK"), ("event", "subscribe")
    # Missed: one message 50 h ago, never answered (closed 2 h ago).
    case(account, [(*text, ago(hours=50))])
    # Not missed: written an hour ago, the window is still open.
    case(account, [(*text, ago(hours=1))])
    # Not missed: a second message came before the first grant ended, then an answer.
    case(account, [(*text, ago(hours=60)), (*text, ago(hours=20))], response=ago(hours=19))
    # Missed: a 60-hour gap between two messages, answered only after the second.
    case(account, [(*text, ago(hours=100)), (*text, ago(hours=40))], response=ago(hours=39))
    # Missed: a menu click (1 minute) 3 hours ago, never answered.
    case(account, [(*click, ago(hours=3))])
    # Not missed: a click inside a running 48-hour grant ends nothing.
    case(account, [(*text, ago(hours=5)), (*click, ago(hours=4))])
    # Not missed: the follow's 1-minute grant asks for no answer.
    case(account, [(*follow, ago(hours=2)), (*text, ago(hours=1))])
    assert dashboard.missed_windows(WEEK, now=NOW) == 3
    assert dashboard.missed_windows(DAY, now=NOW) == 1


def test_charts_are_inline_svg_drawn_from_the_figures(sends):
    svg = dashboard.sends_chart(dashboard.sends_per_hour(DAY))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r'<rect class="sent"', svg)) == 1  # one hour had successful sends
    assert len(re.findall(r'<rect class="failed"', svg)) == 3
    assert "45015" in dashboard.errcode_bars(dashboard.failures_by_errcode(DAY))
    assert ">50.0%<" in dashboard.rate_ring(0.5)
    assert ">—<" in dashboard.rate_ring(None)


def test_the_dashboard_page_draws_from_real_rows(operator_client, account, contact):
    now = timezone.now()
    outbound(account, contact, status="sent", created_at=now - timedelta(minutes=5))
    outbound(account, contact, status="failed", errcode=45047, created_at=now - timedelta(minutes=4))
    SendLog.objects.create(
        account=account, endpoint="/cgi-bin/message/custom/send", latency_ms=123, created_at=now - timedelta(minutes=5)
    )
    response = operator_client.get("/ops/")
    html = response.content.decode()
    assert response.status_code == 200
    assert ">50.0%<" in html
    assert '<span id="latency-p50">123 ms</span>' in html
    assert errors.describe(45047) in html
    assert "<svg" in html and "cdn" not in html.lower()
    assert "运营看板" in html
    week = operator_client.get("/ops/", {"range": "7d", "account": account.pk})
    assert week.context["span_key"] == "7d"
    assert week.context["selected_account"] == account.pk


def test_an_account_filter_narrows_every_figure(account, contact):
    other = account.__class__.objects.create(appid="wx_other", token="t0ken")
    other_contact = Contact.objects.create(account=other, openid="o_other")
    outbound(account, contact, status="sent", created_at=ago(hours=1))
    outbound(other, other_contact, status="failed", errcode=40003, created_at=ago(hours=1))
    only_mine = Period.last(timedelta(hours=24), now=NOW, accounts=[account.pk])
    assert dashboard.success_rate(only_mine)["rate"] == 1
    assert dashboard.failures_by_errcode(only_mine) == []
