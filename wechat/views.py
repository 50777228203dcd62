from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from wechat import health
from wechat import webhook as callback


@csrf_exempt
def webhook(request, appid):
    try:
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        content_length = 0
    if content_length > settings.WECHAT_MAX_BODY_BYTES:
        # Do not read a body we are going to refuse anyway.
        body = b""
    else:
        body = request.read(settings.WECHAT_MAX_BODY_BYTES + 1) if request.method == "POST" else b""
    answer = callback.handle(appid, request.method, request.GET, body, content_length=content_length)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


async def healthz(request):
    # Async, so a probe waiting on a dead Redis or database never holds the
    # one thread Django runs sync views in; health.acheck is bounded in time.
    report = await health.acheck()
    response = JsonResponse(report, status=200 if report["ok"] else 503)
    response["Cache-Control"] = "no-store"
    return response
