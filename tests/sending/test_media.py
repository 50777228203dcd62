"""Inbound media downloads and library uploads against the sandbox (§8)."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import OPENID
from wechat import errors, media
from wechat.models import Contact, InboundMessage, LiveUpdate, MediaAsset
from wechat.sandbox import follower as wx
from wechat.sandbox import media_samples
from wechat.sandbox.models import SandboxCall, SandboxMedia

pytestmark = [pytest.mark.multiprocess, pytest.mark.django_db(transaction=True)]

P = InboundMessage.MediaStatus


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def sends_image(account):
    result = wx.act(account, OPENID, "image", client=Client())
    assert result.delivered
    return InboundMessage.objects.get(msg_type="image")


def test_an_image_a_follower_sent_is_enqueued_then_stored_with_a_live_update(account, wechat):
    message = sends_image(account)
    assert message.media_status == P.PENDING
    task = DBTaskResult.objects.get(task_path="wechat.tasks.fetch_media")
    assert task.queue_name == "media" and task.args_kwargs["kwargs"] == {"inbound_id": message.pk}
    assert media.fetch_inbound(inbound_id=message.pk) == P.FETCHED
    message.refresh_from_db()
    original = SandboxMedia.objects.get(media_id=message.media_id)
    assert message.media_file.read() == bytes(original.data)
    assert message.media_content_type == "image/png"
    assert message.media_file.name.endswith(".png")
    assert message.media_attempts == 1 and message.media_error == ""
    update = LiveUpdate.objects.get(kind="media")
    assert update.data["message"] == message.pk and update.data["status"] == "fetched"
    # A second run (a duplicate task) changes nothing.
    assert media.fetch_inbound(inbound_id=message.pk) == P.FETCHED
    assert LiveUpdate.objects.filter(kind="media").count() == 1


def test_a_video_is_fetched_through_its_video_url(account, wechat):
    wx.act(account, OPENID, "text", content="我发个视频", client=Client())
    contact = Contact.objects.get(openid=OPENID)
    clip = wx.make_media(account, "video")
    message = InboundMessage.objects.create(
        account=account,
        contact=contact,
        msg_type="video",
        from_user=OPENID,
        create_time=1,
        sent_at=timezone.now(),
        media_id=clip.media_id,
        media_status=P.PENDING,
    )
    assert media.fetch_inbound(inbound_id=message.pk) == P.FETCHED
    message.refresh_from_db()
    assert message.media_file.read() == bytes(clip.data)
    assert message.media_file.name.endswith(".mp4")


def test_an_expired_media_id_fails_at_once_visibly(account, wechat):
    message = sends_image(account)
    SandboxMedia.objects.filter(media_id=message.media_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert media.fetch_inbound(inbound_id=message.pk) == P.FAILED
    message.refresh_from_db()
    assert "media_id 无效或已过期" in message.media_error
    assert LiveUpdate.objects.get(kind="media").data["status"] == "failed"


def test_a_transient_failure_is_retried_later_and_shown(account, wechat):
    message = sends_image(account)
    DBTaskResult.objects.all().delete()
    wx.inject_fault("busy", count=1, endpoint="/cgi-bin/media/get")
    assert media.fetch_inbound(inbound_id=message.pk) == P.PENDING
    message.refresh_from_db()
    assert message.media_attempts == 1 and "稍后重试" in message.media_error
    retry = DBTaskResult.objects.get(task_path="wechat.tasks.fetch_media")
    assert retry.run_after > timezone.now()
    assert media.fetch_inbound(inbound_id=message.pk) == P.FETCHED


def test_temporary_upload_sets_media_id_and_a_three_day_expiry(account, wechat):
    asset = MediaAsset(account=account, title="欢迎图", kind="image", lifetime="temporary")
    asset.file.save("welcome.png", ContentFile(media_samples.png()), save=False)
    asset.size = asset.file.size
    asset.save()
    media.upload_asset(asset)
    asset.refresh_from_db()
    assert SandboxMedia.objects.get(media_id=asset.media_id).kind == "image"
    assert asset.expires_at - asset.uploaded_at == timedelta(days=3)
    assert asset.last_error == ""


def test_permanent_video_upload_sends_the_description_form_field(account, wechat):
    asset = MediaAsset(account=account, title="安装指南", kind="video", lifetime="permanent", description="三分钟")
    asset.file.save("guide.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42" + bytes(64)), save=False)
    asset.save()
    media.upload_asset(asset)
    stored = SandboxMedia.objects.get(media_id=asset.media_id)
    assert (stored.title, stored.introduction, stored.lifetime) == ("安装指南", "三分钟", "permanent")
    assert asset.expires_at is None
    call = SandboxCall.objects.get(path="/cgi-bin/material/add_material")
    assert "description=" in call.body and "type=video" in call.query


def test_a_refused_upload_keeps_the_error_on_the_asset(account, wechat):
    asset = MediaAsset(account=account, title="欢迎图", kind="image", lifetime="temporary")
    asset.file.save("welcome.png", ContentFile(media_samples.png()), save=False)
    asset.save()
    wx.inject_fault("daily_quota", endpoint="/cgi-bin/media/upload")
    with pytest.raises(media.MediaError) as raised:
        media.upload_asset(asset)
    asset.refresh_from_db()
    assert asset.last_error == "上传失败：" + errors.describe(45009)
    assert asset.media_id == ""
    assert str(raised.value) == asset.last_error


@pytest.mark.parametrize(
    ("kind", "lifetime", "filename", "size", "message"),
    [
        ("image", "temporary", "a.bmp", 100, "PNG/JPEG/JPG/GIF"),
        ("image", "temporary", "a.png", 10 * 1024 * 1024 + 1, "不能超过 10 MB"),
        ("voice", "temporary", "a.wav", 100, "AMR/MP3"),
        ("voice", "permanent", "a.mp3", 2 * 1024 * 1024 + 1, "不能超过 2 MB"),
        ("video", "temporary", "a.avi", 100, "MP4"),
        ("thumb", "temporary", "a.jpg", 64 * 1024 + 1, "不能超过 64 KB"),
        ("thumb", "temporary", "a.png", 100, "JPG/JPEG"),
        ("image", "temporary", "a.png", 0, "文件是空的"),
        ("file", "temporary", "a.pdf", 100, "不支持的素材类型"),
    ],
)
def test_validate_file_applies_the_limits_of_section_8(kind, lifetime, filename, size, message):
    with pytest.raises(media.MediaError, match=message):
        media.validate_file(kind, lifetime, filename, size)


def test_validate_file_accepts_what_wechat_accepts():
    media.validate_file("image", "permanent", "a.BMP", 1024)
    media.validate_file("voice", "temporary", "a.amr", 2 * 1024 * 1024)
    media.validate_file("thumb", "temporary", "a.jpeg", 64 * 1024)
