"""The follower simulator at /sandbox/: a phone-like page and its small JSON API.

The page polls `state` about once a second (fine for a practice tool) and
posts follower actions to `act`, which books them on the platform and
delivers the push from a background thread (re-posts can take 20 s; the page
must not wait). Fault controls live on the same page.
"""

import json
import secrets

from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from wechat import window
from wechat.models import OfficialAccount
from wechat.sandbox import faults, platform
from wechat.sandbox import follower as wx
from wechat.sandbox.models import SandboxCall, SandboxFault, SandboxFollower, SandboxMessage, SandboxPush
from wechat.sandbox.views import sandbox_only

TIMELINE_LIMIT = 100
# The account's custom menu as the simulator shows it (§6.4: CLICK opens
# 3 sends / 1 min, VIEW opens nothing).
MENU = [
    {"label": "联系客服", "type": "click", "key": "CONTACT_KF"},
    {"label": "订单查询", "type": "click", "key": "ORDER_QUERY"},
    {"label": "官网", "type": "view", "url": "https://example.com/"},
]
EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😭", "👍", "🙏", "🎉", "❤️", "🌹", "☕", "/::D", "[呲牙]"]
ENDPOINTS = [
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/custom/typing",
    "/cgi-bin/media/upload",
    "/cgi-bin/media/get",
    "/cgi-bin/material/add_material",
    "/cgi-bin/token",
    "/cgi-bin/stable_token",
    "/cgi-bin/user/info",
]


@sandbox_only
@ensure_csrf_cookie
@require_GET
def page(request):
    accounts = OfficialAccount.objects.filter(is_active=True).order_by("appid")
    return render(
        request,
        "sandbox/simulator.html",
        {
            "accounts": accounts,
            "fault_kinds": SandboxFault.Kind.choices,
            "endpoints": ENDPOINTS,
            "menu": MENU,
            "emoji": EMOJI,
        },
    )


def _error(message, status=400):
    return JsonResponse({"error": str(message)}, status=status, json_dumps_params={"ensure_ascii": False})


def _account(appid):
    return OfficialAccount.objects.filter(appid=appid, is_active=True).first()


@sandbox_only
@require_GET
def state(request):
    account = _account(request.GET.get("account", ""))
    if account is None:
        return _error(_("未知的公众号"), 404)
    now = platform.now()
    openid = request.GET.get("openid", "")
    data = {
        "followers": [_follower_json(f, now) for f in SandboxFollower.objects.filter(account=account)[:200]],
        "faults": [_fault_json(f) for f in SandboxFault.objects.order_by("-id")[:20]],
        "calls": [_call_json(c) for c in SandboxCall.objects.order_by("-id")[:15]],
        "follower": None,
        "timeline": [],
    }
    follower = SandboxFollower.objects.filter(account=account, openid=openid).first() if openid else None
    if follower is not None:
        data["follower"] = _follower_json(follower, now)
        data["timeline"] = _timeline(follower)
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


def _local(at):
    return timezone.localtime(at).strftime("%m-%d %H:%M:%S") if at else ""


def _follower_json(follower, now):
    described = window.describe(follower.window_state(), now)
    return {
        "openid": follower.openid,
        "nickname": follower.nickname,
        "subscribed": follower.subscribed,
        "window": {
            "open": described["open"],
            "label": described["label"],
            "reason": window.REASON_TEXT.get(described["reason"], ""),
        },
        "typing": bool(follower.typing_until and follower.typing_until > now),
    }


def _timeline(follower):
    pushes = SandboxPush.objects.filter(follower=follower).order_by("-id")[:TIMELINE_LIMIT]
    messages = SandboxMessage.objects.filter(follower=follower).order_by("-id")[:TIMELINE_LIMIT]
    items = [
        {
            "key": f"p{p.pk}",
            "direction": "in",
            "type": p.action,
            "data": p.fields,
            "status": p.status,
            "status_text": p.get_status_display(),
            "attempts": p.attempts,
            "at": p.created_at,
            "time": _local(p.created_at),
        }
        for p in pushes
    ] + [
        {
            "key": f"m{m.pk}",
            "direction": "out",
            "type": m.msgtype,
            "data": m.payload,
            "kf_account": m.kf_account,
            "at": m.created_at,
            "time": _local(m.created_at),
        }
        for m in messages
    ]
    items.sort(key=lambda item: (item["at"], item["key"]))
    for item in items:
        item["at"] = item["at"].isoformat()
    return items[-TIMELINE_LIMIT:]


def _fault_json(fault):
    return {
        "id": fault.pk,
        "kind": fault.kind,
        "label": fault.get_kind_display(),
        "endpoint": fault.endpoint or "*",
        "remaining": fault.remaining,
        "hits": fault.hits,
        "delay_ms": fault.delay_ms,
        "http_status": fault.http_status,
    }


def _call_json(call):
    return {
        "id": call.pk,
        "time": _local(call.created_at),
        "method": call.method,
        "path": call.path,
        "http_status": call.http_status,
        "errcode": call.errcode,
        "errmsg": call.errmsg,
        "fault": call.fault,
    }


def _webhook_base(request):
    try:
        return wx.resolve_webhook_base()
    except wx.FollowerError:
        # No setting: the console serving this page also serves the webhook.
        return f"{request.scheme}://{request.get_host()}"


@sandbox_only
@require_POST
def act(request):
    account = _account(request.POST.get("account", ""))
    if account is None:
        return _error(_("未知的公众号"), 404)
    action = request.POST.get("action", "")
    fields = {k: v for k, v in request.POST.items() if k not in ("account", "openid", "action", "csrfmiddlewaretoken")}
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > 2 * 1024 * 1024:
            return _error(_("文件太大（最多 2 MB）"))
        fields["data"] = upload.read()
        fields["filename"] = upload.name
    base = _webhook_base(request)
    try:
        push = wx.record(account, request.POST.get("openid", ""), action, base=base, **fields)
    except wx.FollowerError as exc:
        return _error(exc)
    wx.deliver_in_background(push.pk, webhook_base=base)
    return JsonResponse({"push": push.pk, "status": push.status})


@sandbox_only
@require_POST
def create_follower(request):
    account = _account(request.POST.get("account", ""))
    if account is None:
        return _error(_("未知的公众号"), 404)
    openid = request.POST.get("openid", "").strip() or "o" + secrets.token_urlsafe(21)[:27]
    nickname = request.POST.get("nickname", "").strip()[:64]
    if len(openid) > 64:
        return _error(_("OpenID 太长"))
    follower = wx.create_follower(account, openid, nickname=nickname)
    return JsonResponse({"openid": follower.openid, "nickname": follower.nickname})


@sandbox_only
@require_POST
def add_fault(request):
    try:
        payload = json.loads(request.body or b"{}")
        fault = faults.inject(
            payload.get("kind", ""),
            count=int(payload.get("count") or 1),
            endpoint=payload.get("endpoint", "") or "",
            delay_ms=int(payload.get("delay_ms") or 0),
            http_status=int(payload.get("http_status") or 503),
        )
    except (ValueError, TypeError) as exc:
        return _error(_("无法设置故障：%(error)s") % {"error": exc})
    return JsonResponse(_fault_json(fault), json_dumps_params={"ensure_ascii": False})


@sandbox_only
@require_POST
def clear_faults(request):
    return JsonResponse({"cleared": faults.clear()})
