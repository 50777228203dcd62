from django.urls import path

from wechat import ops_views

app_name = "ops"

urlpatterns = [
    path("", ops_views.dashboard_view, name="dashboard"),
]
