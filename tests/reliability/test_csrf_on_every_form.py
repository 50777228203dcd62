"""CSRF on every form: every URL of the project refuses a POST without the token.

The URL list is walked from the resolver, so a form added later is covered
without touching this test. Only two views are exempt, both on purpose: the
WeChat webhook (authenticated by its signature, §6.1) and the sandbox's fake
WeChat API (it imitates api.weixin.qq.com and 404s unless WECHAT_SANDBOX).
The POST comes from a logged-in superuser, so no permission check can answer
before the CSRF check does.
"""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

EXEMPT = {"wechat/<str:appid>/", "sandbox/cgi-bin/<path:rest>"}
SAMPLE = {"int": "1", "str": "x", "slug": "x", "path": "x/y", "uuid": "00000000-0000-0000-0000-000000000001"}


def routes(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from routes(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def concrete(route, pattern):
    if isinstance(pattern.pattern, RegexPattern):
        if "app_label" in route:
            return "/" + route.split("^", 1)[0] + "wechat/"
        return None  # the admin's catch-all: it only redirects
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE[m.group(1) or "str"], route)


def every_form():
    out = []
    for route, pattern in routes():
        if route in EXEMPT:
            continue
        path = concrete(route, pattern)
        if path is not None:
            out.append(path)
    return out


def test_only_the_webhook_and_the_fake_wechat_api_are_exempt():
    exempt = {route for route, p in routes() if getattr(p.callback, "csrf_exempt", False)}
    assert exempt == EXEMPT


def test_the_walk_finds_the_console_the_admin_and_the_operator_pages():
    paths = every_form()
    assert len(paths) > 50
    for expected in (
        "/c/1/send/",
        "/c/1/assign/",
        "/accounts/login/",
        "/admin/wechat/officialaccount/add/",
        "/admin/wechat/",
    ):
        assert expected in paths


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused_everywhere():
    # One superuser for all paths (no password: hashing it per path is slow).
    root = User.objects.create(username="root_csrf", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(root)
    answered = {
        path: client.post(path, {"content": "你好", "text": "x", "name": "x"}).status_code for path in every_form()
    }
    assert {path: status for path, status in answered.items() if status != 403} == {}
