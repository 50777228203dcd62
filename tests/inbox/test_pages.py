"""The pages: login everywhere, nothing of other accounts, media never public, Chinese first, Beijing time."""

import re
from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from inbox import services
from inbox.models import CannedReply
from tests.inbox.conftest import follower_says
from wechat.models import InboundMessage, OfficialAccount


@pytest.mark.parametrize(
    "path",
    ["/", "/c/{pk}/", "/api/conversations/", "/api/c/{pk}/", "/api/updates/", "/inbound/{msg}/media/"],
)
def test_every_page_requires_login(client, conversation, path):
    message = InboundMessage.objects.get()
    response = client.get(path.format(pk=conversation.pk, msg=message.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_signs_an_agent_in(client, agent):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert "客服登录" in page.content.decode()
    response = client.post("/accounts/login/", {"username": "agent_li", "password": "pw-agent_li"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "小李" in client.get("/").content.decode()


def test_a_wrong_password_says_so(client, agent):
    response = client.post("/accounts/login/", {"username": "agent_li", "password": "nope"})
    assert "用户名或密码不正确" in response.content.decode()


def test_agents_never_reach_the_admin(client, agent):
    client.force_login(agent)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_conversation_page_shows_the_follower_the_timeline_and_the_composer(client, assigned, agent):
    services.add_note(conversation=assigned, actor=agent, text="已核实订单号")
    client.force_login(agent)
    html = client.get(f"/c/{assigned.pk}/").content.decode()
    assert assigned.contact.openid in html
    assert "我的订单还没到" in html
    # /::D drawn as a face with its code kept (§2.4).
    assert 'title="/::D 呲牙"' in html
    assert "已核实订单号" in html and "内部备注" in html
    for msgtype in (
        "text",
        "image",
        "voice",
        "video",
        "music",
        "news",
        "mpnews",
        "mpnewsarticle",
        "msgmenu",
        "wxcard",
        "miniprogrampage",
    ):
        assert f'data-type="{msgtype}"' in html


def test_events_and_media_messages_render_in_the_timeline(client, account, assigned, agent):
    contact = assigned.contact
    base = {
        "account": account,
        "contact": contact,
        "conversation": assigned,
        "from_user": contact.openid,
        "create_time": 1,
        "sent_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    InboundMessage.objects.create(msg_type="event", event="CLICK", data={"event_key": "MENU_ORDERS"}, **base)
    InboundMessage.objects.create(
        msg_type="voice",
        msg_id="9001",
        data={"recognition": "我要退货"},
        media_status="pending",
        **{**base, "create_time": 2},
    )
    InboundMessage.objects.create(
        msg_type="location",
        msg_id="9002",
        **{**base, "create_time": 3},
        data={"label": "上海市徐汇区", "latitude": "31.18", "longitude": "121.43", "scale": "15"},
    )
    InboundMessage.objects.create(
        msg_type="link",
        msg_id="9003",
        **{**base, "create_time": 4},
        data={"title": "订单截图", "url": "https://example.com/o/1", "description": "看这里"},
    )
    client.force_login(agent)
    html = client.get(f"/c/{assigned.pk}/").content.decode()
    assert "粉丝点击了菜单 MENU_ORDERS" in html
    assert "语音识别：我要退货" in html
    assert "上海市徐汇区" in html and "31.18, 121.43" in html
    assert 'href="https://example.com/o/1"' in html and "看这里" in html


def test_inbound_media_is_served_only_to_those_who_may_see_it(
    client, account, conversation, agent, outsider, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    message = InboundMessage.objects.get()
    message.msg_type = "image"
    message.media_content_type = "image/png"
    message.media_file.save("photo.png", ContentFile(b"\x89PNG fake"), save=True)
    client.force_login(agent)
    response = client.get(f"/inbound/{message.pk}/media/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    client.force_login(outsider)
    assert client.get(f"/inbound/{message.pk}/media/").status_code == 404
    # Never under the public MEDIA_URL.
    assert not reverse("inbox:inbound-media", args=[message.pk]).startswith("/media/")


def test_times_are_shown_in_beijing_time(client, account, agent):
    message = follower_says(account, "几点了")
    InboundMessage.objects.filter(pk=message.pk).update(received_at=datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC))
    services.take_conversation(conversation=message.conversation, actor=agent)
    client.force_login(agent)
    html = client.get(f"/c/{message.conversation_id}/").content.decode()
    assert "03-02 00:30:05" in html  # 16:30 UTC is 00:30 the next day in Asia/Shanghai


def test_chinese_by_default_and_english_on_request(client, assigned, agent):
    client.force_login(agent)
    html = client.get(f"/c/{assigned.pk}/").content.decode()
    assert '<html lang="zh-hans">' in html and "回复粉丝" in html and "标记已解决" in html

    response = client.post("/i18n/setlang/", {"language": "en", "next": f"/c/{assigned.pk}/"})
    assert response.status_code == 302
    html = client.get(f"/c/{assigned.pk}/").content.decode()
    assert '<html lang="en">' in html
    assert "Reply to follower" in html and "Resolve" in html and "Waiting longest" in html
    assert "回复粉丝" not in html
    # The window label reads exactly like wechat.window.describe in English.
    assert re.search(r">4[78]h\d\dm · 5 left</span>", html)
    error = client.post(f"/c/{assigned.pk}/send/", {"msgtype": "text", "content": ""}, HTTP_ACCEPT="application/json")
    assert error.json()["error"] == "The message cannot be empty"


def test_canned_replies_of_the_agents_accounts_reach_the_page(client, account, assigned, agent):
    other = OfficialAccount.objects.create(appid="wx_canned_other", token="t")
    CannedReply.objects.create(account=account, shortcut="hours", title="营业时间", text="我们 9:00–18:00 在线")
    CannedReply.objects.create(account=None, shortcut="thanks", title="致谢", text="感谢您的耐心")
    CannedReply.objects.create(account=other, shortcut="secret", title="别家", text="不该出现")
    client.force_login(agent)
    html = client.get(f"/c/{assigned.pk}/").content.decode()
    assert '"shortcut": "hours"' in html and '"shortcut": "thanks"' in html
    assert '"shortcut": "secret"' not in html


def test_the_remark_form_updates_the_follower(client, conversation, agent):
    client.force_login(agent)
    response = client.post(
        f"/contacts/{conversation.contact.pk}/remark/", {"remark": "李阿姨"}, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {"ok": True, "error": "", "remark": "李阿姨"}
    assert "李阿姨" in client.get("/api/conversations/?tab=all").json()["html"]


def test_a_plain_form_post_never_redirects_off_site(client, conversation, agent):
    client.force_login(agent)
    response = client.post(f"/contacts/{conversation.contact.pk}/remark/", {"remark": "王", "next": "//evil.example/x"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = client.post(
        f"/contacts/{conversation.contact.pk}/remark/", {"remark": "王", "next": f"/c/{conversation.pk}/"}
    )
    assert response["Location"] == f"/c/{conversation.pk}/"
