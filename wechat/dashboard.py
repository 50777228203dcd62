"""The operator dashboard's figures, as plain functions over a time range.

Every count is aggregated in the database (SQLite and PostgreSQL alike);
percentiles use the nearest-rank method with one ordered OFFSET query each,
so nothing loads a whole table into Python. The charts are inline SVG drawn
here from those figures: no JavaScript, no CDN.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from wechat import errors, window
from wechat.models import Conversation, InboundMessage, OutboundMessage, SendLog

S = OutboundMessage.Status
# Finished sends: the ones a success rate is about (queued, in-flight and
# cancelled sends have no outcome yet or never will).
FINISHED = (S.SENT, S.FAILED, S.UNKNOWN)
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


@dataclass(frozen=True)
class Period:
    since: object  # aware datetime, inclusive
    until: object  # aware datetime, exclusive
    accounts: tuple = ()  # account ids; empty means every account

    @classmethod
    def last(cls, span, *, now, accounts=()):
        return cls(now - span, now, tuple(accounts))

    def scope(self, queryset, field, account_field="account"):
        queryset = queryset.filter(**{f"{field}__gte": self.since, f"{field}__lt": self.until})
        if self.accounts:
            queryset = queryset.filter(**{f"{account_field}__in": self.accounts})
        return queryset


def percentile_index(count, p):
    """Nearest-rank percentile: the 0-based position of the p-th percentile among `count` sorted values."""
    if count <= 0:
        return None
    return min(max(math.ceil(p / 100 * count) - 1, 0), count - 1)


def _percentiles(queryset, expression_name, percentiles):
    """{p: value} over `queryset` ordered by `expression_name`, one OFFSET query per percentile."""
    count = queryset.count()
    result = {"count": count}
    ordered = queryset.order_by(expression_name).values_list(expression_name, flat=True)
    for p in percentiles:
        index = percentile_index(count, p)
        result[f"p{p}"] = ordered[index] if index is not None else None
    return result


# --- sends ----------------------------------------------------------------------------


def sends_per_hour(period):
    """One bucket per local hour in the period: {"hour", "sent", "failed", "other", "total"}."""
    zone = timezone.get_current_timezone()
    rows = (
        period.scope(OutboundMessage.objects.all(), "created_at")
        .annotate(hour=TruncHour("created_at", tzinfo=zone))
        .values("hour", "status")
        .annotate(n=Count("id"))
    )
    counts = {}
    for row in rows:
        bucket = counts.setdefault(timezone.localtime(row["hour"], zone), {"sent": 0, "failed": 0, "other": 0})
        key = "sent" if row["status"] == S.SENT else "failed" if row["status"] in (S.FAILED, S.UNKNOWN) else "other"
        bucket[key] += row["n"]
    start = timezone.localtime(period.since, zone).replace(minute=0, second=0, microsecond=0)
    buckets = []
    hour = start
    while hour < period.until:
        c = counts.get(hour, {"sent": 0, "failed": 0, "other": 0})
        buckets.append({"hour": hour, **c, "total": c["sent"] + c["failed"] + c["other"]})
        hour += timedelta(hours=1)
    return buckets


def success_rate(period):
    """Sent / finished (sent + failed + unknown) among messages created in the period."""
    totals = period.scope(OutboundMessage.objects.filter(status__in=FINISHED), "created_at").aggregate(
        sent=Count("id", filter=Q(status=S.SENT)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        unknown=Count("id", filter=Q(status=S.UNKNOWN)),
    )
    finished = totals["sent"] + totals["failed"] + totals["unknown"]
    totals["finished"] = finished
    totals["rate"] = totals["sent"] / finished if finished else None
    return totals


def failures_by_errcode(period):
    """Failed and unknown sends by their last errcode, most frequent first, each with its meaning."""
    rows = (
        period.scope(OutboundMessage.objects.filter(status__in=(S.FAILED, S.UNKNOWN)), "created_at")
        .values("last_errcode")
        .annotate(n=Count("id"))
        .order_by("-n", "last_errcode")
    )
    result = []
    for row in rows:
        code = row["last_errcode"]
        reason = errors.describe(code) if code is not None else _("没有 errcode：网络错误或结果未知")
        result.append({"errcode": code, "count": row["n"], "reason": reason})
    return result


def api_latency(period, percentiles=(50, 95)):
    """p50 / p95 of WeChat API latency in milliseconds over the send log's attempts."""
    logs = period.scope(SendLog.objects.filter(latency_ms__isnull=False), "created_at")
    return _percentiles(logs, "latency_ms", percentiles)


# --- conversations --------------------------------------------------------------------


def first_response(period, percentiles=(50, 95)):
    """Time from a conversation's first inbound message to the first reply (answered ones only)."""
    answered = period.scope(
        Conversation.objects.filter(first_inbound_at__isnull=False, first_response_at__isnull=False),
        "first_inbound_at",
    ).annotate(wait=ExpressionWrapper(F("first_response_at") - F("first_inbound_at"), output_field=DurationField()))
    result = _percentiles(answered, "wait", percentiles)
    result["unanswered"] = period.scope(
        Conversation.objects.filter(first_inbound_at__isnull=False, first_response_at__isnull=True),
        "first_inbound_at",
    ).count()
    return result


def _window_openings():
    """Inbound rows that open a reply window (§3.1), each with the moment its grant ends.

    A bare follow opens a short grant but asks for no answer, so it is not
    counted (the inbox does not start waiting on it either).
    """
    asks = Q(msg_type__in=window.MESSAGE_TYPES) | Q(
        msg_type="event", event__in=window.SHORT_GRANT_EVENTS - {"subscribe"}
    )
    period = Case(
        When(msg_type__in=window.MESSAGE_TYPES, then=Value(window.LONG_PERIOD)),
        default=Value(window.SHORT_PERIOD),
        output_field=DurationField(),
    )
    return InboundMessage.objects.filter(asks).annotate(
        closes_at=ExpressionWrapper(F("sent_at") + period, output_field=DateTimeField())
    )


def missed_windows(period, *, now):
    """Conversations whose reply window closed at least once before anyone replied.

    A window closes at the end of a grant unless another grant (a later
    message, or a longer grant already running) covers that moment (§3.1).
    Counted over conversations that started in the period; "before anyone
    replied" means before the first response, or before `now` if there is none.
    """
    covered = _window_openings().filter(
        conversation=OuterRef("conversation"),
        sent_at__lte=OuterRef("closes_at"),
        closes_at__gt=OuterRef("closes_at"),
    )
    deadline = Coalesce(OuterRef("first_response_at"), Value(now, output_field=DateTimeField()))
    gaps = (
        _window_openings()
        .filter(conversation=OuterRef("pk"), closes_at__lt=deadline)
        .annotate(covered=Exists(covered))
        .filter(covered=False)
    )
    started = period.scope(Conversation.objects.filter(first_inbound_at__isnull=False), "first_inbound_at")
    return started.filter(Exists(gaps)).count()


def summary(*, now, span_key="24h", accounts=()):
    span = RANGES.get(span_key, RANGES["24h"])
    period = Period.last(span, now=now, accounts=accounts)
    return {
        "period": period,
        "span_key": span_key if span_key in RANGES else "24h",
        "per_hour": sends_per_hour(period),
        "rate": success_rate(period),
        "failures": failures_by_errcode(period),
        "latency": api_latency(period),
        "first_response": first_response(period),
        "missed_windows": missed_windows(period, now=now),
    }


# --- charts (inline SVG) --------------------------------------------------------------

COLOURS = {"sent": "#16a34a", "failed": "#dc2626", "other": "#9ca3af", "grid": "#e5e7eb", "text": "#374151"}


def _nice_step(value, ticks=4):
    """A whole-number tick step (1, 2, 5, 10, 20, 50 …) so `ticks` steps cover `value`."""
    raw = max(math.ceil(value / ticks), 1)
    magnitude = 10 ** int(math.floor(math.log10(raw)))
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return raw


def sends_chart(buckets, *, width=760, height=220):
    """Stacked bars per hour (sent / failed or unknown / other), y axis from zero."""
    left, right, top, bottom = 40, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _nice_step(max((b["total"] for b in buckets), default=0))
    peak = step * 4
    n = max(len(buckets), 1)
    slot = plot_w / n
    bar = max(slot * 0.8, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(_("每小时发送量"))}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLOURS["grid"]}"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="{COLOURS["text"]}">{value:g}</text>'
        )
    # A day's hours are labelled every three hours; a week's at each local midnight.
    daily = n <= 25
    for i, b in enumerate(buckets):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        tip = _("%(hour)s：成功 %(sent)d，失败/未知 %(failed)d，其他 %(other)d") % {
            "hour": b["hour"].strftime("%m-%d %H:00"),
            "sent": b["sent"],
            "failed": b["failed"],
            "other": b["other"],
        }
        parts.append(f'<g class="bar" data-hour="{b["hour"].strftime("%Y-%m-%dT%H")}"><title>{escape(tip)}</title>')
        for key in ("sent", "failed", "other"):
            if not b[key]:
                continue
            h = plot_h * b[key] / peak
            y -= h
            parts.append(
                f'<rect class="{key}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{COLOURS[key]}"/>'
            )
        parts.append("</g>")
        if (daily and b["hour"].hour % 3 == 0) or (not daily and b["hour"].hour == 0):
            label = b["hour"].strftime("%H:00") if daily else b["hour"].strftime("%m-%d")
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="10" fill="{COLOURS["text"]}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every interpolated text is escaped above


def rate_ring(rate, *, size=120):
    """A ring filled to the success rate; grey and "—" when nothing finished."""
    radius, stroke = size / 2 - 10, 12
    circumference = 2 * math.pi * radius
    filled = circumference * (rate or 0)
    label = "—" if rate is None else f"{rate * 100:.1f}%"
    colour = COLOURS["sent"] if rate is None or rate >= 0.95 else "#d97706" if rate >= 0.8 else COLOURS["failed"]
    c = size / 2
    svg = (
        f'<svg class="ring" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
        f'aria-label="{escape(_("成功率"))} {label}" xmlns="http://www.w3.org/2000/svg">'
        f'<circle cx="{c}" cy="{c}" r="{radius:.1f}" fill="none" stroke="{COLOURS["grid"]}" stroke-width="{stroke}"/>'
        f'<circle cx="{c}" cy="{c}" r="{radius:.1f}" fill="none" stroke="{colour}" stroke-width="{stroke}" '
        f'stroke-dasharray="{filled:.2f} {circumference:.2f}" transform="rotate(-90 {c} {c})"/>'
        f'<text x="{c}" y="{c + 6}" text-anchor="middle" font-size="18" font-weight="600" '
        f'fill="{COLOURS["text"]}">{label}</text></svg>'
    )
    return mark_safe(svg)  # noqa: S308  only numbers and a fixed label


def errcode_bars(failures, *, width=360, row=22):
    """Horizontal bars, one per errcode, longest first."""
    if not failures:
        return ""
    peak = max(f["count"] for f in failures)
    label_w, right = 64, 40
    height = row * len(failures) + 4
    parts = [
        f'<svg class="chart errcodes" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(_("按 errcode 统计的失败"))}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, f in enumerate(failures):
        y = 2 + i * row
        w = (width - label_w - right) * f["count"] / peak
        code = "—" if f["errcode"] is None else str(f["errcode"])
        parts.append(
            f"<g><title>{escape(code)}：{escape(f['reason'])}</title>"
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12" '
            f'fill="{COLOURS["text"]}">{escape(code)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{COLOURS["failed"]}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12" fill="{COLOURS["text"]}">{f["count"]}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  every interpolated text is escaped above


def format_duration(value):
    """12 秒 / 3 分 20 秒 / 2 小时 5 分 / 1 天 3 小时."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value)
    if seconds < 60:
        return _("%(s)d 秒") % {"s": seconds}
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)d 分 %(s)d 秒") % {"m": minutes, "s": s}
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)d 小时 %(m)d 分") % {"h": hours, "m": m}
    days, h = divmod(hours, 24)
    return _("%(d)d 天 %(h)d 小时") % {"d": days, "h": h}
