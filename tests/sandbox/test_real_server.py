"""The faults that only a real server can produce, through uvicorn on loopback."""

import json

import pytest
import requests

from tests.conftest import OPENID
from tests.sandbox.server import Server
from wechat.models import InboundMessage
from wechat.sandbox import follower as wx

pytestmark = [pytest.mark.multiprocess]

SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def server(django_db_serialized_rollback, transactional_db):
    # Serialized rollback keeps the rows of data migrations (role groups)
    # that the flush after a transactional test would otherwise delete.
    running = Server().start()
    yield running
    running.stop()


def send(server, token, content="你好", timeout=10):
    body = {"touser": OPENID, "msgtype": "text", "text": {"content": content}}
    return requests.post(
        f"{server.base}/sandbox{SEND}",
        params={"access_token": token},
        data=json.dumps(body, ensure_ascii=False).encode(),
        timeout=(3, timeout),
    )


def test_a_reset_fault_drops_the_connection_before_the_request_is_read(server, account):
    token = wx.issue_token(account)
    wx.act(account, OPENID, "text", content="在吗", deliver=False)
    wx.inject_fault("reset", endpoint=SEND)
    with pytest.raises(requests.ConnectionError) as raised:
        send(server, token)
    # The connection dies with no answer at all: normally a RST (ECONNRESET);
    # on a loaded machine the client may read the close first and report
    # "closed connection without response". Either way no status line came.
    message = str(raised.value).lower()
    assert "reset" in message or "without response" in message
    assert not isinstance(raised.value, requests.ReadTimeout)
    # Nothing was delivered; the next call goes through.
    assert not wx.delivered(account).exists()
    assert send(server, token).json()["errcode"] == 0
    assert [c.fault for c in wx.calls(SEND)] == ["reset", ""]
    reset = wx.calls(SEND).first()
    assert "access_token=***" in reset.query and token not in reset.query


def test_a_read_timeout_fault_delivers_then_answers_too_late(server, account):
    token = wx.issue_token(account)
    wx.act(account, OPENID, "text", content="在吗", deliver=False)
    wx.inject_fault("read_timeout", endpoint=SEND, delay_ms=3000)
    with pytest.raises(requests.ReadTimeout):
        send(server, token, "这条会超时", timeout=1)
    # The ambiguous case: the client saw a timeout, the follower got the message.
    assert wx.delivered(account).get().payload == {"content": "这条会超时"}


def test_the_follower_api_pushes_to_the_real_webhook(server, account):
    result = wx.act(account, OPENID, "text", content="你好 😀", webhook_base=server.base)
    assert result.delivered
    assert result.attempts == 1
    assert InboundMessage.objects.get().content == "你好 😀"
    image = wx.act(account, OPENID, "image", webhook_base=server.base)
    assert image.delivered
    media_id = image.push.fields["media_id"]
    # The console can fetch what the follower sent, over HTTP, with a token.
    response = requests.get(
        f"{server.base}/sandbox/cgi-bin/media/get",
        params={"access_token": wx.issue_token(account), "media_id": media_id},
        timeout=5,
    )
    assert response.content.startswith(b"\x89PNG")


def test_concurrent_calls_share_a_fault_count_exactly(server, account):
    from concurrent.futures import ThreadPoolExecutor

    token = wx.issue_token(account)
    wx.inject_fault("busy", count=3, endpoint="/cgi-bin/user/info")

    def call(_):
        params = {"access_token": token, "openid": "o_nobody"}
        return requests.get(f"{server.base}/sandbox/cgi-bin/user/info", params=params, timeout=20).json()["errcode"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(12)))
    assert sorted(answers) == [-1, -1, -1] + [40003] * 9


def test_concurrent_stable_token_calls_get_one_token(server, account):
    from concurrent.futures import ThreadPoolExecutor

    body = {"grant_type": "client_credential", "appid": account.appid, "secret": account.app_secret}

    def call(_):
        return requests.post(f"{server.base}/sandbox/cgi-bin/stable_token", json=body, timeout=20).json()[
            "access_token"
        ]

    with ThreadPoolExecutor(max_workers=6) as pool:
        tokens = set(pool.map(call, range(6)))
    assert len(tokens) == 1


@pytest.fixture
def small_pool_server(django_db_serialized_rollback, transactional_db):
    # On PostgreSQL: two pooled connections per process, given up on after half a second.
    running = Server(DATABASE_POOL_MAX_SIZE="2", DATABASE_POOL_TIMEOUT="0.5").start()
    yield running
    running.stop()


def test_delayed_calls_wait_side_by_side_holding_no_database_connection(small_pool_server, account):
    from concurrent.futures import ThreadPoolExecutor

    token = wx.issue_token(account)
    wx.inject_fault("latency", count=12, endpoint="/cgi-bin/user/info", delay_ms=1500)

    def call(_):
        params = {"access_token": token, "openid": "o_nobody"}
        url = f"{small_pool_server.base}/sandbox/cgi-bin/user/info"
        response = requests.get(url, params=params, timeout=30)
        return response.status_code, response.json()["errcode"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(call, range(12)))
    # Twelve calls waiting 1.5 s each on a pool of two: none was refused a
    # connection, every one got WeChat's answer after its delay.
    assert answers == [(200, 40003)] * 12
    assert [c.fault for c in wx.calls("/cgi-bin/user/info")] == ["latency"] * 12


def test_a_fault_scoped_to_another_account_leaves_this_one_alone_under_uvicorn(server, account):
    from wechat.models import OfficialAccount

    other = OfficialAccount.objects.create(appid="wx_other", token="t", app_secret="s")
    wx.inject_fault("busy", account=other)
    wx.inject_fault("latency", account=account, delay_ms=50)

    def info(token):
        params = {"access_token": token, "openid": "o_nobody"}
        return requests.get(f"{server.base}/sandbox/cgi-bin/user/info", params=params, timeout=10).json()["errcode"]

    assert info(wx.issue_token(account)) == 40003
    assert info(wx.issue_token(other)) == -1
    assert [c.fault for c in wx.calls("/cgi-bin/user/info").order_by("id")] == ["latency", "busy"]
