from django.urls import path  # noqa: F401

# Filled in by the inbox: the agents' websocket endpoints.
websocket_urlpatterns = []
