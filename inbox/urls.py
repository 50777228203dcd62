from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<int:pk>/", views.home, name="conversation"),
    path("c/<int:pk>/take/", views.take, name="take"),
    path("c/<int:pk>/assign/", views.assign, name="assign"),
    path("c/<int:pk>/resolve/", views.resolve, name="resolve"),
    path("c/<int:pk>/reopen/", views.reopen, name="reopen"),
    path("c/<int:pk>/pending/", views.pending, name="pending"),
    path("c/<int:pk>/snooze/", views.snooze, name="snooze"),
    path("c/<int:pk>/note/", views.note, name="note"),
    path("c/<int:pk>/read/", views.read, name="read"),
    path("c/<int:pk>/send/", views.send, name="send"),
    path("contacts/<int:pk>/remark/", views.remark, name="remark"),
    path("outbound/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("outbound/<int:pk>/resend/", views.resend, name="resend"),
    path("inbound/<int:pk>/media/", views.inbound_media, name="inbound-media"),
    path("library/<int:pk>/file/", views.library_media, name="library-media"),
    path("api/conversations/", views.api_conversations, name="api-conversations"),
    path("api/c/<int:pk>/", views.api_conversation, name="api-conversation"),
    path("api/updates/", views.api_updates, name="api-updates"),
]
