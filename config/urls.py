from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from wechat import views as wechat_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", wechat_views.healthz, name="healthz"),
    path("wechat/<str:appid>/", wechat_views.webhook, name="wechat-webhook"),
    # Exists only when WECHAT_SANDBOX is on; the views answer 404 otherwise.
    path("sandbox/", include("wechat.sandbox.urls")),
    # Operator pages: the dashboard (admin and operator roles).
    path("ops/", include("wechat.ops_urls")),
    path("", include("inbox.urls")),
]
