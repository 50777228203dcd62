from django.urls import path

from wechat.sandbox import views

app_name = "sandbox"

# Every view answers 404 unless WECHAT_SANDBOX is on (checked per request).
urlpatterns = [
    path("cgi-bin/<path:rest>", views.api, name="api"),
    path("files/<str:media_id>", views.media_file, name="file"),
]
