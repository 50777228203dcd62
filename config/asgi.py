"""ASGI entry point: HTTP and websockets, served by uvicorn.

uvicorn config.asgi:application
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from inbox.routing import websocket_urlpatterns  # noqa: E402
from wechat.consumers import fast_path  # noqa: E402

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
# WeChat pushes take the fast path (no middleware, no consumer, see
# wechat/consumers.py); everything else goes to Channels and Django.
application = fast_path(application)

# Outermost, so the sandbox's connection-reset fault still holds the server's
# own `send` (and through it the socket); every other request passes through.
# See wechat/sandbox/faults.py.
from wechat.sandbox.faults import ResetMiddleware  # noqa: E402

application = ResetMiddleware(application)
