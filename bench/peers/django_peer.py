"""The Django peers of benchmark 1, in one file: its settings, URLs and views.

* `/bare/` answers `success` and does nothing else: the ceiling of a Django
  view on this server.
* `/wechatpy/` is what most WeChat tutorials deploy: wechatpy's signature
  check and parse (and decrypt in safe mode), no storage.

No middleware, no database: only what the peers need, so the comparison is
generous to them. Served by the same uvicorn as ours:
    uvicorn bench.peers.django_peer:application
"""

import os

from django.conf import settings

TOKEN = os.environ.get("BENCH_TOKEN", "bench-token")
APPID = os.environ.get("BENCH_APPID", "wx_bench_appid_001")
AES_KEY = os.environ.get("BENCH_AES_KEY", "")

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-peer-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from wechatpy import parse_message  # noqa: E402
from wechatpy.crypto import WeChatCrypto  # noqa: E402
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException  # noqa: E402
from wechatpy.utils import check_signature  # noqa: E402

_crypto = WeChatCrypto(TOKEN, AES_KEY, APPID) if AES_KEY else None


@csrf_exempt
def bare(request):
    return HttpResponse(b"success", content_type="text/plain")


@csrf_exempt
def wechatpy_view(request):
    q = request.GET
    try:
        check_signature(TOKEN, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
    except InvalidSignatureException:
        return HttpResponseForbidden()
    try:
        if q.get("encrypt_type") == "aes":
            xml = _crypto.decrypt_message(request.body, q.get("msg_signature", ""), q["timestamp"], q["nonce"])
            parse_message(xml)
            return HttpResponse(b"", content_type="text/plain")
        parse_message(request.body)
    except (InvalidSignatureException, InvalidAppIdException, ValueError, KeyError):
        return HttpResponseBadRequest()
    return HttpResponse(b"success", content_type="text/plain")


urlpatterns = [
    path("bare/", bare),
    path("wechatpy/", wechatpy_view),
]

application = get_asgi_application()
