from django.urls import path

from wechat.sandbox import simulator, views

app_name = "sandbox"

# Every view answers 404 unless WECHAT_SANDBOX is on (checked per request).
urlpatterns = [
    path("", simulator.page, name="simulator"),
    path("sim/state", simulator.state, name="sim-state"),
    path("sim/act", simulator.act, name="sim-act"),
    path("sim/followers", simulator.create_follower, name="sim-followers"),
    path("sim/faults", simulator.add_fault, name="sim-faults"),
    path("sim/faults/clear", simulator.clear_faults, name="sim-faults-clear"),
    path("cgi-bin/<path:rest>", views.api, name="api"),
    path("files/<str:media_id>", views.media_file, name="file"),
]
