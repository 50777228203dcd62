"""Replying from the composer: who may send, what WeChat's rules refuse, and that forms need CSRF."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from wechat.models import MediaAsset, NewsTemplate, OfficialAccount, OutboundMessage

JSON = {"HTTP_ACCEPT": "application/json"}


def send(client, conversation, **fields):
    return client.post(f"/c/{conversation.pk}/send/", {"msgtype": "text", **fields}, **JSON)


def test_the_assignee_queues_a_text_reply(client, assigned, agent):
    client.force_login(agent)
    response = send(client, assigned, content="您好 /::) 马上为您查询")

    assert response.status_code == 200, response.content
    message = OutboundMessage.objects.get(pk=response.json()["message"])
    assert message.agent == agent and message.conversation == assigned
    assert message.status == "queued"
    assert message.payload == {
        "touser": assigned.contact.openid,
        "msgtype": "text",
        "text": {"content": "您好 /::) 马上为您查询"},
    }


def test_a_colleague_who_is_not_the_assignee_cannot_send_and_sees_why(client, assigned, colleague):
    client.force_login(colleague)
    response = send(client, assigned, content="我来回答")

    assert response.status_code == 400
    assert response.json()["error"] == "会话由 小李 负责，只有负责人或主管可以回复"
    assert not OutboundMessage.objects.exists()


def test_nobody_sends_on_an_unassigned_conversation_before_taking_it(client, conversation, agent):
    client.force_login(agent)
    response = send(client, conversation, content="你好")
    assert response.status_code == 400
    assert "请先领取" in response.json()["error"]
    assert not OutboundMessage.objects.exists()


def test_a_supervisor_may_step_in(client, assigned, supervisor):
    client.force_login(supervisor)
    assert send(client, assigned, content="主管来了").status_code == 200
    assert OutboundMessage.objects.get().agent == supervisor


def test_an_agent_of_another_account_cannot_even_see_it(client, assigned, outsider):
    client.force_login(outsider)
    assert send(client, assigned, content="你好").status_code == 404
    assert client.get(f"/c/{assigned.pk}/").status_code == 404
    assert client.get(f"/api/c/{assigned.pk}/").status_code == 404


def test_a_closed_window_refuses_with_wechats_reason_and_the_composer_locks(client, assigned, agent):
    contact = assigned.contact
    contact.long_expires_at = timezone.now() - timedelta(seconds=1)
    contact.save(update_fields=["long_expires_at"])
    client.force_login(agent)

    response = send(client, assigned, content="还在吗")
    assert response.status_code == 409
    assert "窗口已关闭" in response.json()["error"]
    assert not OutboundMessage.objects.exists()

    state = client.get(f"/api/c/{assigned.pk}/").json()["state"]
    assert state["can_send"] is False
    assert state["blocker_kind"] == "window"
    assert "需等待粉丝再次互动" in state["blocker"]
    assert state["window"]["label"] == "closed"


def test_an_unfollowed_follower_locks_the_composer(client, assigned, agent):
    contact = assigned.contact
    contact.subscribed = False
    contact.save(update_fields=["subscribed"])
    client.force_login(agent)
    state = client.get(f"/api/c/{assigned.pk}/").json()["state"]
    assert state["can_send"] is False and "取消关注" in state["blocker"]


def test_the_quota_counts_down_and_the_sixth_reply_is_refused(client, assigned, agent):
    client.force_login(agent)
    for n in range(5):
        assert send(client, assigned, content=f"第 {n + 1} 条").status_code == 200
        assert client.get(f"/api/c/{assigned.pk}/").json()["state"]["window"]["remaining"] == 4 - n

    response = send(client, assigned, content="第 6 条")
    assert response.status_code == 409
    assert "发送条数已用完" in response.json()["error"]
    assert OutboundMessage.objects.count() == 5


def test_text_over_2048_bytes_is_refused_before_queueing(client, assigned, agent):
    client.force_login(agent)
    response = send(client, assigned, content="字" * 683)  # 2049 bytes of UTF-8 (§2.4)
    assert response.status_code == 400
    assert "2048" in response.json()["error"]
    assert not OutboundMessage.objects.exists()


def test_a_build_error_is_shown_in_plain_words(client, assigned, agent):
    client.force_login(agent)
    response = send(client, assigned, msgtype="msgmenu", menu_items="101|满意\n101|不满意")
    assert response.status_code == 400
    assert response.json()["error"] == "菜单消息的选项 id 不能重复"


def test_an_image_comes_from_the_library_of_the_right_kind(client, assigned, agent, account):
    now = timezone.now()
    image = MediaAsset.objects.create(
        account=account, title="说明图", kind="image", media_id="MEDIA_IMG_1", expires_at=now + timedelta(days=2)
    )
    voice = MediaAsset.objects.create(account=account, title="语音", kind="voice", media_id="MEDIA_VOICE_1")
    client.force_login(agent)

    assert send(client, assigned, msgtype="image", image_asset=str(voice.pk)).json()["error"] == (
        "素材「语音」的类型不对"
    )
    assert send(client, assigned, msgtype="image", image_asset=str(image.pk)).status_code == 200
    assert OutboundMessage.objects.get().payload["image"] == {"media_id": "MEDIA_IMG_1"}


def test_expired_or_foreign_media_are_refused(client, assigned, agent, account):
    now = timezone.now()
    expired = MediaAsset.objects.create(
        account=account, title="旧图", kind="image", media_id="OLD", expires_at=now - timedelta(minutes=1)
    )
    other = OfficialAccount.objects.create(appid="wx_other", token="t")
    foreign = MediaAsset.objects.create(account=other, title="别家的图", kind="image", media_id="FOREIGN")
    client.force_login(agent)

    assert "已过期" in send(client, assigned, msgtype="image", image_asset=str(expired.pk)).json()["error"]
    assert "不属于这个公众号" in send(client, assigned, msgtype="image", image_asset=str(foreign.pk)).json()["error"]
    assert not OutboundMessage.objects.exists()


def test_news_comes_from_a_template_with_exactly_one_article(client, assigned, agent, account):
    template = NewsTemplate.objects.create(
        account=account, name="退货", title="退货流程", description="三步完成", url="https://example.com/returns"
    )
    client.force_login(agent)
    assert send(client, assigned, msgtype="news", news_template=str(template.pk)).status_code == 200
    assert OutboundMessage.objects.get().payload["news"] == {
        "articles": [{"title": "退货流程", "description": "三步完成", "url": "https://example.com/returns"}]
    }


def test_a_scheduled_reply_can_be_cancelled_and_gives_its_quota_back(client, assigned, agent):
    client.force_login(agent)
    at = timezone.localtime() + timedelta(hours=1)
    response = send(client, assigned, content="一小时后提醒您", send_at=at.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 200
    message = OutboundMessage.objects.get()
    assert message.status == "queued" and message.send_at > timezone.now() + timedelta(minutes=50)
    assigned.contact.refresh_from_db()
    assert assigned.contact.long_used == 1

    assert client.post(f"/outbound/{message.pk}/cancel/", **JSON).json() == {"ok": True, "error": ""}
    message.refresh_from_db()
    assigned.contact.refresh_from_db()
    assert message.status == "cancelled"
    assert assigned.contact.long_used == 0


def test_a_colleague_cannot_cancel_the_assignees_reply(client, assigned, agent, colleague):
    client.force_login(agent)
    send(
        client,
        assigned,
        content="稍后发送",
        send_at=(timezone.localtime() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    )
    client.force_login(colleague)
    response = client.post(f"/outbound/{OutboundMessage.objects.get().pk}/cancel/", **JSON)
    assert response.status_code == 400
    assert OutboundMessage.objects.get().status == "queued"


def test_a_schedule_in_the_past_is_refused(client, assigned, agent):
    client.force_login(agent)
    response = send(client, assigned, content="过去", send_at="2020-01-01T08:00")
    assert response.status_code == 400 and "晚于现在" in response.json()["error"]


@pytest.mark.parametrize(
    "path", ["/c/{pk}/send/", "/c/{pk}/take/", "/c/{pk}/resolve/", "/c/{pk}/note/", "/c/{pk}/snooze/"]
)
def test_forms_are_refused_without_the_csrf_token(assigned, agent, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = client.post(path.format(pk=assigned.pk), {"content": "你好", "text": "备注", "hours": "1"})
    assert response.status_code == 403
    assert not OutboundMessage.objects.exists()
    assigned.refresh_from_db()
    assert assigned.status == "open" and assigned.assignee == agent


def test_a_form_with_the_pages_csrf_token_goes_through(assigned, agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    page = client.get(f"/c/{assigned.pk}/")
    token = page.cookies["csrftoken"].value
    response = client.post(f"/c/{assigned.pk}/note/", {"text": "记一下", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert assigned.activities.get().text == "记一下"
