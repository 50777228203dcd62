"""Operator pages: the dashboard. Admin and operator roles only; everyone else gets 403."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import roles
from wechat import dashboard
from wechat.models import OfficialAccount


def _require_ops(request):
    if not roles.has_role(request.user, roles.OPERATOR, roles.ADMIN):
        raise PermissionDenied


@login_required
def dashboard_view(request):
    _require_ops(request)
    accounts = list(OfficialAccount.objects.order_by("appid"))
    try:
        selected = int(request.GET.get("account", ""))
    except ValueError:
        selected = None
    chosen = [a.pk for a in accounts if a.pk == selected]
    data = dashboard.summary(now=timezone.now(), span_key=request.GET.get("range", "24h"), accounts=chosen)
    latency, first = data["latency"], data["first_response"]
    context = {
        # The admin's frame (header, user links, theme) around the dashboard.
        **admin.site.each_context(request),
        "title": _("运营看板"),
        **data,
        "accounts": accounts,
        "selected_account": chosen[0] if chosen else None,
        "ranges": [("24h", _("最近 24 小时")), ("7d", _("最近 7 天"))],
        "sends_chart": dashboard.sends_chart(data["per_hour"]),
        "rate_ring": dashboard.rate_ring(data["rate"]["rate"]),
        "errcode_chart": dashboard.errcode_bars(data["failures"]),
        "total_sends": sum(b["total"] for b in data["per_hour"]),
        "first_p50": dashboard.format_duration(first["p50"]),
        "first_p95": dashboard.format_duration(first["p95"]),
        "latency_p50": latency["p50"],
        "latency_p95": latency["p95"],
    }
    return render(request, "ops/dashboard.html", context)
