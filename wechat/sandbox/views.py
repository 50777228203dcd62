"""HTTP face of the fake API under /sandbox/cgi-bin/…: translate, record, inject faults.

One dispatcher serves every path so that faults, token checks and the call
record apply uniformly. The platform's behaviour lives in
`wechat.sandbox.platform` and its rules in `wechat.sandbox.rules`.
"""

import time
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from config.logging import redact
from wechat import rawsql
from wechat.sandbox import faults, platform
from wechat.sandbox.models import SandboxCall
from wechat.sandbox.rules import ApiError

RECORD_LIMIT = 64 * 1024


def sandbox_only(view):
    """Every /sandbox/ URL is a 404 unless WECHAT_SANDBOX is on — checked per request."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.WECHAT_SANDBOX:
            raise Http404("sandbox disabled")
        return view(request, *args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Endpoint:
    handler: object
    post_only: bool = False
    needs_token: bool = True


def _token(request, at, account):
    return platform.classic_token(request.GET, at=at)


def _stable_token(request, at, account):
    return platform.stable_token(request.method, _body(request), at=at)


def _custom_send(request, at, account):
    return platform.send_custom(account, _body(request), at=at)


def _typing(request, at, account):
    return platform.typing(account, _body(request), at=at)


def _media_upload(request, at, account):
    return platform.upload_media(account, request.GET.get("type", ""), request.FILES.get("media"), at=at)


def _media_get(request, at, account):
    return platform.get_media(account, request.GET.get("media_id", ""), at=at, file_url=_file_url(request))


def _add_material(request, at, account):
    return platform.add_material(
        account,
        request.GET.get("type", ""),
        request.FILES.get("media"),
        request.POST.get("description", ""),
        at=at,
        file_url=_file_url(request),
    )


def _del_material(request, at, account):
    return platform.del_material(account, _body(request))


def _user_info(request, at, account):
    return platform.user_info(account, request.GET)


ENDPOINTS = {
    "/cgi-bin/token": Endpoint(_token, needs_token=False),
    "/cgi-bin/stable_token": Endpoint(_stable_token, needs_token=False),
    "/cgi-bin/message/custom/send": Endpoint(_custom_send, post_only=True),
    "/cgi-bin/message/custom/typing": Endpoint(_typing, post_only=True),
    "/cgi-bin/media/upload": Endpoint(_media_upload, post_only=True),
    "/cgi-bin/media/get": Endpoint(_media_get),
    "/cgi-bin/material/add_material": Endpoint(_add_material, post_only=True),
    "/cgi-bin/material/del_material": Endpoint(_del_material, post_only=True),
    "/cgi-bin/user/info": Endpoint(_user_info),
}


def _body(request):
    try:
        return request.body
    except RequestDataTooBig as exc:
        raise ApiError(47001, "body too large") from exc


def _file_url(request):
    def build(media_id):
        return request.build_absolute_uri(reverse("sandbox:file", args=[media_id]))

    return build


@csrf_exempt
@sandbox_only
def api(request, rest):
    path = "/cgi-bin/" + rest
    endpoint = ENDPOINTS.get(path)
    token_value = request.GET.get("access_token", "")
    needs_token = endpoint is None or endpoint.needs_token

    # Under uvicorn the faults were taken, and their delays are waited out,
    # by faults.ResetMiddleware around this view (see there); otherwise here.
    plan = getattr(request, "scope", {}).get(faults.SCOPE_KEY)
    waits_here = plan is None
    if waits_here:
        owner = platform.token_owner(token_value) if needs_token else None
        plan = faults.plan(path, account=owner, token_call=not needs_token)
        if plan.latency is not None:
            time.sleep(faults.delay_seconds(plan.latency))
    # The token row as it is now, after any delay: read once, for the record and the check.
    token = platform.find_token(token_value) if needs_token else None
    account = token.account if token is not None else None
    at = platform.now()
    if plan.answer is not None:
        reply = _fault_reply(plan.answer, token_value, at)
    else:
        reply, account = _run(endpoint, request, at, account, token)
    _record(request, path, account, reply, plan.recorded)
    if plan.late is not None and waits_here:
        # The answer is ready and the effect recorded; only the client's read
        # deadline passes before it leaves (the ambiguous case of §10.2).
        time.sleep(faults.delay_seconds(plan.late))
    return _response(reply)


def _run(endpoint, request, at, account, token):
    try:
        if endpoint is None:
            # §5: a wrong prefix or unknown path is "invalid url".
            raise ApiError(40066)
        if endpoint.needs_token:
            account = platform.check_token(request.GET.get("access_token", ""), token, at=at)
        if endpoint.post_only and request.method != "POST":
            raise ApiError(43002)
        reply = endpoint.handler(request, at, account)
        # The token endpoints say which app asked; the others act for `account`.
        return reply if isinstance(reply, tuple) else (reply, account)
    except ApiError as exc:
        return platform.error_reply(exc), account


def _fault_reply(fault, token_value, at):
    kind = fault.kind
    if kind == faults.Kind.HTTP_ERROR:
        status = fault.http_status
        html = f"<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>"
        return platform.Reply(status=status, content=html.encode(), content_type="text/html")
    if kind == faults.Kind.TOKEN_EXPIRED:
        platform.expire_token(token_value, at=at)
        return platform.error_reply(ApiError(42001))
    errcode = {faults.Kind.BUSY: -1, faults.Kind.DAILY_QUOTA: 45009, faults.Kind.RATE_LIMIT: 45011}[kind]
    return platform.error_reply(ApiError(errcode))


def _response(reply):
    response = HttpResponse(reply.body(), status=reply.status, content_type=reply.content_type)
    for name, value in reply.headers.items():
        response[name] = value
    return response


def _record(request, path, account, reply, fault):
    # Every call is recorded: one INSERT without the ORM's compiler.
    rawsql.insert(
        SandboxCall(
            account=account,
            method=request.method,
            path=path,
            query=redact(request.META.get("QUERY_STRING", ""))[:1024],
            body=_request_text(request),
            http_status=reply.status,
            errcode=reply.errcode,
            errmsg=reply.errmsg[:512],
            response=_response_text(reply),
            fault=fault.kind if fault is not None else "",
        )
    )


def _request_text(request):
    if request.content_type == "multipart/form-data":
        parts = [f"{name}={value}" for name, value in request.POST.items()]
        parts += [f"{name}=<{f.name} {f.size} bytes {f.content_type}>" for name, f in request.FILES.items()]
        return redact("&".join(parts))[:RECORD_LIMIT]
    try:
        raw = request.body
    except RequestDataTooBig:
        return "<too large>"
    return redact(raw.decode("utf-8", "replace"))[:RECORD_LIMIT]


def _response_text(reply):
    if reply.data is not None:
        return redact(reply.body().decode("utf-8"))[:RECORD_LIMIT]
    if reply.content_type.startswith("text/"):
        return reply.content.decode("utf-8", "replace")[:RECORD_LIMIT]
    return f"<{len(reply.content)} bytes {reply.content_type}>"


@sandbox_only
def media_file(request, media_id):
    """The CDN-like URL of a media file (video_url, permanent image url, the simulator)."""
    media = platform.media_file(media_id, at=platform.now())
    if media is None:
        raise Http404("no such media")
    response = HttpResponse(bytes(media.data), content_type=media.content_type or "application/octet-stream")
    response["Cache-Control"] = "private, max-age=3600"
    return response
