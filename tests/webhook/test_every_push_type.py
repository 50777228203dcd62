"""Every message type of §6.3 and every event of §6.4 is parsed into a typed object and stored."""

import pytest

from tests.conftest import post_push
from tests.webhook.helpers import fixture
from wechat import pushes
from wechat.models import InboundMessage

CASES = [
    ("text.xml", pushes.TextMessage, {"content": "你好，我的订单还没到 /::D [呲牙] 😀"}),
    ("text_menu_choice.xml", pushes.TextMessage, {"content": "满意", "bizmsgmenuid": "101"}),
    ("text_from_article.xml", pushes.TextMessage, {"content": "文章里的留言"}),
    ("image.xml", pushes.ImageMessage, {"media_id": "media_image_1", "pic_url": "http://mmbiz.qpic.cn/example.jpg"}),
    ("voice.xml", pushes.VoiceMessage, {"media_id": "media_voice_1", "format": "amr", "recognition": ""}),
    ("voice_with_recognition.xml", pushes.VoiceMessage, {"recognition": "我要退货"}),
    ("video.xml", pushes.VideoMessage, {"media_id": "media_video_1", "thumb_media_id": "thumb_1"}),
    ("shortvideo.xml", pushes.VideoMessage, {"media_id": "media_sv_1", "thumb_media_id": "thumb_2"}),
    (
        "location.xml",
        pushes.LocationMessage,
        {"latitude": "23.134521", "longitude": "113.358803", "label": "广州市天河区"},
    ),
    ("link.xml", pushes.LinkMessage, {"title": "订单截图说明", "url": "https://example.com/order/1"}),
    ("event_subscribe.xml", pushes.SubscribeEvent, {"event_key": ""}),
    ("event_subscribe_from_qr.xml", pushes.SubscribeEvent, {"event_key": "qrscene_123123", "scene": "123123"}),
    ("event_unsubscribe.xml", pushes.UnsubscribeEvent, {}),
    ("event_scan.xml", pushes.ScanEvent, {"event_key": "123123", "ticket": "TICKET"}),
    ("event_location.xml", pushes.LocationEvent, {"latitude": "23.137466", "precision": "119.385040"}),
    ("event_click.xml", pushes.MenuEvent, {"event_key": "CONTACT_US"}),
    ("event_view.xml", pushes.MenuEvent, {"event_key": "https://example.com/shop", "menu_id": "208396938"}),
    ("event_view_miniprogram.xml", pushes.MenuEvent, {"event_key": "pages/index/index"}),
    ("event_scancode_push.xml", pushes.ScanCodeEvent, {"scan_type": "qrcode", "scan_result": "1"}),
    ("event_scancode_waitmsg.xml", pushes.ScanCodeEvent, {"scan_result": "2"}),
    ("event_pic_sysphoto.xml", pushes.MenuPictureEvent, {"count": 1}),
    ("event_pic_photo_or_album.xml", pushes.MenuPictureEvent, {"count": 2, "pic_md5s": ("aaa", "bbb")}),
    ("event_pic_weixin.xml", pushes.MenuPictureEvent, {"count": 1}),
    ("event_location_select.xml", pushes.LocationSelectEvent, {"label": "广州市海珠区"}),
    ("event_templatesendjobfinish.xml", pushes.JobFinishEvent, {"job_msg_id": "200163836", "status": "success"}),
    ("event_masssendjobfinish.xml", pushes.JobFinishEvent, {"sent_count": "75", "error_count": "5"}),
    ("event_kf_create_session.xml", pushes.KfSessionEvent, {"kf_account": "test1@test"}),
    ("event_kf_close_session.xml", pushes.KfSessionEvent, {"kf_account": "test1@test"}),
    (
        "event_kf_switch_session.xml",
        pushes.KfSessionEvent,
        {"from_kf_account": "test1@test", "to_kf_account": "test2@test"},
    ),
    ("event_subscribe_msg_popup.xml", pushes.SubscribeMsgEvent, {}),
    ("unknown_message_type.xml", pushes.UnknownPush, {"fields": {"Beam": "3D"}}),
    ("unknown_event.xml", pushes.UnknownPush, {"fields": {"Where": "moon"}}),
]


@pytest.mark.parametrize(("name", "cls", "expected"), CASES, ids=[c[0] for c in CASES])
def test_it_parses_each_push_into_its_typed_object(name, cls, expected):
    push = pushes.parse_push(fixture(name, now=1700000000).encode())
    assert type(push) is cls
    assert push.from_user == "o_follower_0001"
    assert push.to_user == "gh_testaccount"
    assert push.create_time == 1700000000
    for attr, value in expected.items():
        assert getattr(push, attr) == value, attr
    if push.msg_type == "event":
        assert push.msg_id is None
    else:
        assert push.msg_id.isdigit()


@pytest.mark.parametrize(("name", "cls", "expected"), CASES, ids=[c[0] for c in CASES])
def test_it_stores_each_push_through_the_webhook(client, account, name, cls, expected):
    response = post_push(client, fixture(name))
    assert response.status_code == 200
    assert response.content == b"success"
    row = InboundMessage.objects.get()
    assert row.msg_type == pushes.parse_push(fixture(name).encode()).msg_type
    assert row.raw_xml.startswith("<xml>")
    assert row.content  # a preview for the list and for search
    if cls is pushes.UnknownPush:
        # Stored raw, never dropped.
        assert row.data["fields"] == expected["fields"]


def test_subscribe_msg_popup_keeps_every_list_item():
    push = pushes.parse_push(fixture("event_subscribe_msg_popup.xml").encode())
    assert len(push.items) == 2
    assert dict(push.items[1])["SubscribeStatusString"] == "reject"


def test_media_messages_are_marked_for_download(client, account):
    post_push(client, fixture("image.xml"))
    row = InboundMessage.objects.get()
    assert row.media_id == "media_image_1"
    assert row.media_status in ("pending", "fetched", "failed")
