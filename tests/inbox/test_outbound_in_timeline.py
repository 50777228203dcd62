"""Replies in the timeline carry their live status: queued, sent, failed with why, unknown with a resend button."""

from datetime import timedelta

from django.utils import timezone

from wechat.models import OutboundMessage

JSON = {"HTTP_ACCEPT": "application/json"}


def reply(conversation, agent, status, **fields):
    return OutboundMessage.objects.create(
        account=conversation.account,
        contact=conversation.contact,
        conversation=conversation,
        agent=agent,
        msgtype="text",
        preview=fields.pop("text", "回复"),
        payload={"touser": conversation.contact.openid, "msgtype": "text", "text": {"content": "回复"}},
        status=status,
        **fields,
    )


def test_each_status_is_shown_with_what_the_agent_can_do(client, assigned, agent):
    sent = reply(assigned, agent, "sent", sent_at=timezone.now())
    failed = reply(assigned, agent, "failed", reason="粉丝已取消关注", last_errcode=43004)
    unknown = reply(assigned, agent, "unknown")
    queued = reply(assigned, agent, "queued", send_at=timezone.now() + timedelta(hours=1))
    client.force_login(agent)
    html = client.get(f"/api/c/{assigned.pk}/").json()["timeline"]

    def item(message):
        start = html.index(f'data-outbound="{message.pk}"')
        return html[start : html.index("</li>", start)]

    assert "已发送" in item(sent) and "重发" not in item(sent)
    assert "粉丝已取消关注 (errcode 43004)" in item(failed) and f"/outbound/{failed.pk}/resend/" in item(failed)
    assert "微信可能已收到" in item(unknown) and f"/outbound/{unknown.pk}/resend/" in item(unknown)
    assert "定时" in item(queued) and f"/outbound/{queued.pk}/cancel/" in item(queued)


def test_resending_an_unknown_reply_makes_a_new_ledger_row(client, assigned, agent):
    unknown = reply(assigned, agent, "unknown")
    client.force_login(agent)
    response = client.post(f"/outbound/{unknown.pk}/resend/", **JSON)
    assert response.status_code == 200, response.content
    new = OutboundMessage.objects.get(pk=response.json()["message"])
    assert new.resend_of == unknown and new.status == "queued" and new.agent == agent


def test_a_sent_reply_cannot_be_resent(client, assigned, agent):
    sent = reply(assigned, agent, "sent")
    client.force_login(agent)
    response = client.post(f"/outbound/{sent.pk}/resend/", **JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "只有失败或结果未知的消息可以重发"
    assert OutboundMessage.objects.count() == 1


def test_only_the_assignee_resends(client, assigned, agent, colleague):
    failed = reply(assigned, agent, "failed")
    client.force_login(colleague)
    assert client.post(f"/outbound/{failed.pk}/resend/", **JSON).status_code == 400
    assert OutboundMessage.objects.count() == 1
