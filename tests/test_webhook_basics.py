from tests.conftest import post_push, text_xml
from wechat.models import Contact, Conversation, InboundMessage, LiveUpdate


def test_it_stores_a_signed_text_message_and_answers_success(client, account):
    response = post_push(client, text_xml("你好 😀", msg_id="42"))
    assert response.status_code == 200
    assert response.content == b"success"
    message = InboundMessage.objects.get()
    assert message.content == "你好 😀"
    assert message.msg_id == "42"
    assert Contact.objects.get().long_quota == 5
    assert Conversation.objects.get().waiting_since is not None
    assert LiveUpdate.objects.filter(kind="inbound").count() == 1


def test_it_drops_a_retried_push(client, account):
    assert post_push(client, text_xml(msg_id="7")).content == b"success"
    assert post_push(client, text_xml(msg_id="7")).content == b"success"
    assert InboundMessage.objects.count() == 1
    account.refresh_from_db()
    assert account.duplicate_pushes == 1


def test_safe_mode_push_is_decrypted_and_answered_with_an_empty_body(client, account):
    response = post_push(client, text_xml("加密", msg_id="9"), mode="safe")
    assert response.status_code == 200
    assert response.content == b""
    assert InboundMessage.objects.get().content == "加密"
