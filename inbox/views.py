"""The agents' pages. Thin: read through `inbox.queries`, change through `inbox.services`.

Every view requires login. Pages render whole screens; the `api_*` views
return fragments/JSON that the page's script swaps in after a live update
(the database is the truth, the socket only says "something changed").
Forms post with Django's CSRF token; answers are JSON for the page's
script and a redirect (with a message) for a plain form post.
"""

import time
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from inbox import access, composer, queries, roles, services
from inbox.models import CannedReply
from wechat import live, window
from wechat.models import Contact, Conversation, InboundMessage, LiveUpdate, MediaAsset, OutboundMessage

_last_wake = 0.0
WAKE_EVERY_SECONDS = 30


def _wake_snoozed(now):
    # Expired snoozes go back to Open when someone looks at the list; at most
    # every 30 s per process so the list stays a read.
    global _last_wake
    if time.monotonic() - _last_wake < WAKE_EVERY_SECONDS:
        return
    _last_wake = time.monotonic()
    services.wake_snoozed_conversations(now=now)


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


def _conversation_or_404(request, pk):
    conversation = get_object_or_404(Conversation.objects.select_related("contact", "assignee", "account"), pk=pk)
    if not access.can_see_conversation(request.user, conversation):
        raise Http404
    return conversation


def _list_context(request, params, now):
    account_ids = access.visible_account_ids(request.user)
    page = queries.conversation_page(user=request.user, account_ids=account_ids, params=params, now=now)
    badges = queries.tab_badges(user=request.user, account_ids=account_ids)
    return {
        "page": page,
        "params": params,
        "badges": badges,
        "now": now,
        "badge_cap": queries.BADGE_CAP,
        "account_ids": account_ids,
    }


def conversation_state(conversation, user, now):
    """What the composer needs to lock or unlock itself; also sent as JSON."""
    decision = window.check(conversation.contact.window_state(), now)
    described = window.describe(conversation.contact.window_state(), now)
    who_blocker = access.send_blocker(user, conversation)
    window_blocker = "" if decision.allowed else str(composer.WINDOW_REASONS.get(decision.reason, decision.reason))
    return {
        "conversation": conversation.pk,
        "status": conversation.status,
        "assignee": conversation.assignee_id,
        "assignee_name": access.display_name(conversation.assignee),
        "can_send": not who_blocker and decision.allowed,
        "blocker": who_blocker or window_blocker,
        "blocker_kind": "who" if who_blocker else ("window" if window_blocker else ""),
        "window": {
            "open": described["open"],
            "reason": described["reason"],
            "remaining": described["remaining"],
            "expires_at": described["expires_at"].isoformat() if described["expires_at"] else None,
            "label": described["label"],
        },
        "subscribed": conversation.contact.subscribed,
    }


def _conversation_context(request, conversation, now):
    services.mark_read(conversation=conversation, user=request.user)
    account = conversation.account
    return {
        "conversation": conversation,
        "contact": conversation.contact,
        "items": queries.timeline(conversation),
        "past": queries.past_conversations(conversation),
        "state": conversation_state(conversation, request.user, now),
        "agents": services.agents_for(conversation),
        "media": composer.usable_media(account, now),
        "news_templates": composer.news_templates(account),
        "msgtypes": composer.MSGTYPES,
        "text_max_bytes": composer.TEXT_MAX_BYTES,
        "is_supervisor": roles.is_supervisor(request.user),
        "now": now,
    }


def _canned(account_ids):
    replies = CannedReply.objects.filter(account_id__in=account_ids) | CannedReply.objects.filter(account__isnull=True)
    return [
        {
            "account": r.account_id,
            "shortcut": r.shortcut,
            "title": r.title,
            "kind": r.kind,
            "text": r.text,
            "media": r.media_id,
            "news": r.news_id,
        }
        for r in replies.order_by("shortcut")[:500]
    ]


@login_required
@require_GET
def home(request, pk=None):
    # Taken before anything is read, so an update that lands while the page
    # renders is caught up afterwards rather than lost.
    last_update_id = _latest_update_id()
    now = timezone.now()
    _wake_snoozed(now)
    params = queries.ListParams.from_query(request.GET)
    context = _list_context(request, params, now)
    conversation = _conversation_or_404(request, pk) if pk is not None else None
    if conversation is not None:
        context.update(_conversation_context(request, conversation, now))
    badges = context["badges"]
    context.update(
        {
            "tabs": [
                ("mine", _("我的"), badges["mine"]),
                ("unassigned", _("未分配"), badges["unassigned"]),
                ("all", _("全部"), None),
            ],
            "statuses": Conversation.Status.choices,
            "sorts": [("waiting", _("等待最久")), ("closing", _("窗口最先关闭")), ("recent", _("最新消息"))],
            "config": _page_config(request, conversation, last_update_id, context),
        }
    )
    return render(request, "inbox/inbox.html", context)


def _page_config(request, conversation, last_update_id, context):
    """Everything the page's script needs, as one JSON blob (no globals, no inline JS)."""
    return {
        "user": request.user.pk,
        "conversation": conversation.pk if conversation else None,
        "lastUpdateId": last_update_id,
        "state": context.get("state"),
        "textMaxBytes": composer.TEXT_MAX_BYTES,
        "canned": _canned(context["account_ids"]),
        "urls": {
            "home": reverse("inbox:home"),
            "conversations": reverse("inbox:api-conversations"),
            "conversation": reverse("inbox:api-conversation", args=[0]),
            "page": reverse("inbox:conversation", args=[0]),
            "updates": reverse("inbox:api-updates"),
            "take": reverse("inbox:take", args=[0]),
            "read": reverse("inbox:read", args=[0]),
            "socket": "/ws/inbox/",
        },
        "strings": {
            "title": _("客服工作台"),
            "connecting": _("连接中…"),
            "connected": _("已连接"),
            "reconnecting": _("连接断开，正在重连…"),
            "refused": _("登录已失效，请刷新页面重新登录"),
            "viewing": _("%(names)s 正在查看这个会话"),
            "typing": _("%(name)s 正在输入…"),
            "closed": _("已关闭"),
            "left": _("%(countdown)s · 剩 %(n)s 条"),
            "afterSend": _("发送后本窗口还剩 %(n)s 条"),
            "lastOne": _("这是本窗口的最后一条，发送后要等粉丝再次互动才能继续回复"),
            "confirmLast": _("这是本窗口最后一条可发送的消息，发送后要等粉丝再次互动。确定发送？"),
            "windowClosed": str(composer.WINDOW_REASONS[window.EXPIRED]),
            "tooLong": _("文本超过 %(max)s 字节"),
            "failed": _("操作失败，请重试"),
            "sent": _("已加入发送队列"),
        },
    }


def _latest_update_id():
    return LiveUpdate.objects.order_by("-id").values_list("id", flat=True).first() or 0


@login_required
@require_GET
def api_conversations(request):
    now = timezone.now()
    params = queries.ListParams.from_query(request.GET)
    context = _list_context(request, params, now)
    html = render_to_string("inbox/_rows.html", context, request=request)
    return JsonResponse({"html": html, "next_cursor": context["page"].next_cursor, "badges": context["badges"]})


@login_required
@require_GET
def api_conversation(request, pk):
    now = timezone.now()
    conversation = _conversation_or_404(request, pk)
    context = _conversation_context(request, conversation, now)
    return JsonResponse(
        {
            "timeline": render_to_string("inbox/_timeline.html", context, request=request),
            "header": render_to_string("inbox/_conversation_header.html", context, request=request),
            "panel": render_to_string("inbox/_panel.html", context, request=request),
            "state": context["state"],
        }
    )


@login_required
@require_GET
def api_updates(request):
    """Catch-up for a page that lost its socket: updates after `after`, oldest first."""
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    account_ids = access.visible_account_ids(request.user)
    updates = live.updates_after(after, account_ids=account_ids, limit=500)
    events = [
        {
            "type": "live",
            "id": u.id,
            "kind": u.kind,
            "account": u.account_id,
            "conversation": u.conversation_id,
            "data": u.data,
        }
        for u in updates
    ]
    return JsonResponse({"updates": events, "more": len(updates) == 500})


# --- actions ---------------------------------------------------------------


def _action(view):
    """POST-only, login required; ActionRefused becomes a 400 with its message."""

    @login_required
    @require_POST
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            result = view(request, *args, **kwargs)
        except services.ActionRefused as exc:
            return _answer(request, ok=False, error=exc.message, status=400)
        except composer.ComposeError as exc:
            return _answer(request, ok=False, error=exc.message, status=400)
        return result

    return wrapper


def _answer(request, *, ok, error="", status=200, redirect_to=None, **extra):
    if _wants_json(request):
        return JsonResponse({"ok": ok, "error": error, **extra}, status=status)
    if error:
        messages.error(request, error)
    target = redirect_to or request.POST.get("next") or request.headers.get("Referer") or ""
    # Only back into this site ("//evil.example" starts with "/" too).
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("inbox:home")
    return HttpResponseRedirect(target)


def _back(conversation):
    return reverse("inbox:conversation", args=[conversation.pk])


@_action
def take(request, pk):
    conversation = _conversation_or_404(request, pk)
    services.take_conversation(conversation=conversation, actor=request.user)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def assign(request, pk):
    conversation = _conversation_or_404(request, pk)
    raw = request.POST.get("assignee", "")
    assignee = None
    if raw:
        assignee = get_user_model().objects.filter(pk=raw if raw.isdigit() else 0, is_active=True).first()
        if assignee is None:
            raise services.ActionRefused(_("找不到这位同事"))
    services.assign_conversation(conversation=conversation, assignee=assignee, actor=request.user)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def resolve(request, pk):
    conversation = _conversation_or_404(request, pk)
    services.resolve_conversation(conversation=conversation, actor=request.user)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def reopen(request, pk):
    conversation = _conversation_or_404(request, pk)
    services.reopen_conversation(conversation=conversation, actor=request.user)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def pending(request, pk):
    conversation = _conversation_or_404(request, pk)
    services.mark_pending(conversation=conversation, actor=request.user)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def snooze(request, pk):
    conversation = _conversation_or_404(request, pk)
    now = timezone.now()
    raw = request.POST.get("until", "")
    hours = request.POST.get("hours", "")
    if hours:
        try:
            until = now + timedelta(hours=float(hours))
        except ValueError as exc:
            raise services.ActionRefused(_("暂缓时间格式不对")) from exc
    else:
        try:
            until = composer.parse_send_at(raw, now) if raw else None
        except composer.ComposeError as exc:
            raise services.ActionRefused(_("暂缓时间必须晚于现在")) from exc
    services.snooze_conversation(conversation=conversation, actor=request.user, until=until, now=now)
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def note(request, pk):
    conversation = _conversation_or_404(request, pk)
    services.add_note(conversation=conversation, actor=request.user, text=request.POST.get("text", ""))
    return _answer(request, ok=True, redirect_to=_back(conversation))


@_action
def remark(request, pk):
    contact = get_object_or_404(Contact, pk=pk)
    if not access.can_see_account(request.user, contact.account_id):
        raise Http404
    services.update_remark(contact=contact, actor=request.user, remark=request.POST.get("remark", ""))
    return _answer(request, ok=True, remark=contact.remark)


@_action
def read(request, pk):
    conversation = _conversation_or_404(request, pk)
    last = services.mark_read(conversation=conversation, user=request.user)
    return _answer(request, ok=True, last_read=last)


@_action
def send(request, pk):
    conversation = _conversation_or_404(request, pk)
    now = timezone.now()
    msgtype, data, send_at = composer.parse(request.POST, account=conversation.account, now=now)
    try:
        from wechat import builders, outbound
    except ImportError:
        return _answer(request, ok=False, error=_("发送模块尚未安装"), status=503)
    try:
        message = services.send_reply(
            conversation=conversation, actor=request.user, msgtype=msgtype, data=data, send_at=send_at, now=now
        )
    except outbound.SendRefused as exc:
        return _answer(request, ok=False, error=str(getattr(exc, "message", exc)), status=409)
    except builders.BuildError as exc:
        return _answer(request, ok=False, error=str(exc), status=400)
    return _answer(request, ok=True, message=message.pk, status_text=message.status, redirect_to=_back(conversation))


def _outbound_or_404(request, pk):
    message = get_object_or_404(OutboundMessage.objects.select_related("conversation__assignee"), pk=pk)
    if not access.can_see_account(request.user, message.account_id):
        raise Http404
    return message


@_action
def cancel(request, pk):
    message = _outbound_or_404(request, pk)
    services.cancel_reply(message=message, actor=request.user)
    return _answer(request, ok=True)


@_action
def resend(request, pk):
    message = _outbound_or_404(request, pk)
    try:
        from wechat import builders, outbound
    except ImportError:
        return _answer(request, ok=False, error=_("发送模块尚未安装"), status=503)
    try:
        new = services.resend_reply(message=message, actor=request.user)
    except outbound.SendRefused as exc:
        return _answer(request, ok=False, error=str(getattr(exc, "message", exc)), status=409)
    except builders.BuildError as exc:
        return _answer(request, ok=False, error=str(exc), status=400)
    return _answer(request, ok=True, message=new.pk)


@login_required
@require_GET
def inbound_media(request, pk):
    """A follower's stored image / voice / video, only for those who may see the conversation."""
    message = get_object_or_404(
        InboundMessage.objects.only("id", "account_id", "media_file", "media_content_type"), pk=pk
    )
    if not access.can_see_account(request.user, message.account_id) or not message.media_file:
        raise Http404
    try:
        handle = message.media_file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type=message.media_content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET
def library_media(request, pk):
    """A media-library file an agent sent, shown in the timeline; never public."""
    asset = get_object_or_404(MediaAsset.objects.only("id", "account_id", "file"), pk=pk)
    if not access.can_see_account(request.user, asset.account_id) or not asset.file:
        raise Http404
    try:
        handle = asset.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
