"""The media library: §8 limits checked before upload, expiry flagged, re-upload keeps the entry."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from wechat.models import AuditLog, MediaAsset
from wechat.sandbox.media_samples import amr, png

ADD = "/admin/wechat/mediaasset/add/"
CHANGELIST = "/admin/wechat/mediaasset/"


def add_form(account, upload, **overrides):
    data = {
        "account": account.pk,
        "title": "门店照片",
        "kind": "image",
        "lifetime": "temporary",
        "description": "",
        "file": upload,
        "_save": "保存",
    }
    data.update(overrides)
    return data


def asset(account, title, *, expires_in=None, lifetime="temporary", media_id="MEDIA", kind="image"):
    now = timezone.now()
    return MediaAsset.objects.create(
        account=account,
        title=title,
        kind=kind,
        lifetime=lifetime,
        file=ContentFile(png(), name=f"{title}.png"),
        size=100,
        media_id=media_id,
        uploaded_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_a_thumb_over_64_kb_is_refused_before_any_upload(admin_client, account, media_root):
    big = SimpleUploadedFile("cover.jpg", b"\xff\xd8\xff" + bytes(70 * 1024), content_type="image/jpeg")
    response = admin_client.post(ADD, add_form(account, big, kind="thumb"))
    assert response.status_code == 200
    assert "缩略图素材不能超过 64 KB" in response.content.decode()
    assert not MediaAsset.objects.exists()


def test_a_wrong_format_is_refused_with_the_formats_that_work(admin_client, account, media_root):
    wav = SimpleUploadedFile("greeting.wav", b"RIFF" + bytes(100), content_type="audio/wav")
    response = admin_client.post(ADD, add_form(account, wav, kind="voice"))
    assert "AMR/MP3" in response.content.decode()
    assert not MediaAsset.objects.exists()


def test_changing_the_kind_rechecks_the_stored_file(admin_client, account, media_root):
    stored = asset(account, "logo")
    response = admin_client.post(
        f"/admin/wechat/mediaasset/{stored.pk}/change/",
        {
            "account": account.pk,
            "title": "logo",
            "kind": "voice",
            "lifetime": "temporary",
            "description": "",
            "_save": "保存",
        },
    )
    assert response.status_code == 200
    assert "语音素材只支持" in response.content.decode()
    stored.refresh_from_db()
    assert stored.kind == "image"


def test_expired_and_soon_expiring_media_are_flagged(operator_client, account, media_root):
    gone = asset(account, "gone", expires_in=timedelta(hours=-1))
    soon = asset(account, "soon", expires_in=timedelta(hours=5))
    fine = asset(account, "fine", expires_in=timedelta(days=2))
    kept = asset(account, "kept", lifetime="permanent")
    never = asset(account, "never", media_id="")

    def titles(expiry):
        response = operator_client.get(CHANGELIST, {"expiry": expiry})
        return sorted(a.title for a in response.context["cl"].result_list)

    assert titles("attention") == ["gone", "soon"]
    assert titles("expired") == ["gone"]
    assert titles("expiring") == ["soon"]
    assert titles("ok") == ["fine"]
    assert titles("permanent") == ["kept"]
    assert titles("missing") == ["never"]
    html = operator_client.get(CHANGELIST).content.decode()
    for item, state in ((gone, "expired"), (soon, "expiring"), (fine, "ok"), (kept, "permanent"), (never, "missing")):
        assert f"media-expiry-{state}" in html, item.title
    assert "24 小时内过期 · 剩" in html


# --- against the sandbox WeChat on loopback -----------------------------------------------


def test_an_uploaded_image_is_on_wechat_and_usable_in_a_reply_the_same_minute(
    wechat, admin_client, admin_user, account
):
    from wechat import outbound
    from wechat.models import Contact, OutboundMessage
    from wechat.sandbox import follower as wx
    from wechat.sandbox.models import SandboxMedia, SandboxMessage

    upload = SimpleUploadedFile("门店.png", png(), content_type="image/png")
    response = admin_client.post(ADD, add_form(account, upload), follow=True)
    assert response.status_code == 200
    item = MediaAsset.objects.get()
    assert item.media_id, item.last_error
    assert item.size == len(png())
    assert item.expires_at - item.uploaded_at == timedelta(days=3)  # §8.1
    assert item.media_id in response.content.decode()  # the admin is told the media_id
    on_wechat = SandboxMedia.objects.get(media_id=item.media_id)
    assert (on_wechat.kind, on_wechat.lifetime, on_wechat.size) == ("image", "temporary", len(png()))
    assert {"media.create", "media.upload"} <= set(AuditLog.objects.values_list("action", flat=True))

    # A follower writes; the agent replies with the new image right away.
    pushed = wx.act(account, "o_shop_visitor", "text", content="门店在哪？", timeout=15)
    assert pushed.delivered, (pushed.http_status, pushed.error)
    contact = Contact.objects.get(openid="o_shop_visitor")
    message = outbound.queue_message(
        account=account, contact=contact, msgtype="image", data={"media_id": item.media_id}
    )
    outbound.deliver_due(contact_id=contact.pk, worker="admin-test")
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT, message.reason
    received = SandboxMessage.objects.get(openid="o_shop_visitor")
    assert received.payload == {"media_id": item.media_id}


def test_reupload_keeps_the_same_entry_with_a_fresh_media_id(wechat, admin_client, admin_user, account):
    from wechat.sandbox.models import SandboxMedia

    item = MediaAsset.objects.create(
        account=account,
        title="旧图",
        kind="image",
        lifetime="temporary",
        file=ContentFile(png(), name="old.png"),
        size=len(png()),
        media_id="EXPIRED-ID",
        uploaded_at=timezone.now() - timedelta(days=4),
        expires_at=timezone.now() - timedelta(days=1),
    )
    response = admin_client.post(CHANGELIST, {"action": "reupload", ACTION_CHECKBOX_NAME: [item.pk]}, follow=True)
    assert response.status_code == 200
    same = MediaAsset.objects.get()
    assert same.pk == item.pk
    assert same.media_id not in ("", "EXPIRED-ID")
    assert same.expires_at > timezone.now() + timedelta(days=2)
    assert SandboxMedia.objects.filter(media_id=same.media_id).exists()
    assert "已重新上传 1 个素材" in response.content.decode()
    entry = AuditLog.objects.get(action="media.reupload")
    assert entry.actor == admin_user and entry.object_id == str(item.pk)
    assert entry.data["media_id"] == same.media_id


def test_a_permanent_voice_is_added_as_material(wechat, admin_client, account):
    from wechat.sandbox.models import SandboxMedia

    upload = SimpleUploadedFile("welcome.amr", amr(2), content_type="audio/amr")
    admin_client.post(ADD, add_form(account, upload, kind="voice", lifetime="permanent", title="欢迎语音"))
    item = MediaAsset.objects.get()
    assert item.media_id and item.expires_at is None
    assert SandboxMedia.objects.get(media_id=item.media_id).lifetime == "permanent"


def test_a_refused_upload_keeps_the_entry_and_says_why(wechat, admin_client, account):
    from wechat import errors
    from wechat.sandbox import faults

    faults.inject("daily_quota", endpoint="/cgi-bin/media/upload", account=account)
    upload = SimpleUploadedFile("logo.png", png(), content_type="image/png")
    response = admin_client.post(ADD, add_form(account, upload), follow=True)
    html = response.content.decode()
    item = MediaAsset.objects.get()  # the file and the entry are kept
    assert item.media_id == ""
    assert item.file and item.size == len(png())
    assert item.last_error.startswith("上传失败")
    assert errors.describe(45009) in item.last_error
    assert errors.describe(45009) in html
    assert AuditLog.objects.filter(action="media.upload_failed").exists()
    assert "media-expiry-missing" in admin_client.get(CHANGELIST).content.decode()
    # Once WeChat accepts uploads again, the same entry gets its media_id.
    admin_client.post(CHANGELIST, {"action": "reupload", ACTION_CHECKBOX_NAME: [item.pk]})
    item.refresh_from_db()
    assert item.media_id and item.last_error == ""


def test_deleting_media_in_bulk_is_audited_per_item(admin_client, admin_user, account, media_root):
    first, second = asset(account, "一号", media_id="M1"), asset(account, "二号", media_id="M2")
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "post": "yes", ACTION_CHECKBOX_NAME: [first.pk, second.pk]}
    )
    assert response.status_code == 302
    assert not MediaAsset.objects.exists()
    entries = AuditLog.objects.filter(action="media.delete").order_by("object_id")
    assert [(e.object_id, e.data["media_id"], e.actor) for e in entries] == [
        (str(first.pk), "M1", admin_user),
        (str(second.pk), "M2", admin_user),
    ]


def _permanent_on_wechat(admin_client, account, title):
    from wechat.sandbox.models import SandboxMedia

    upload = SimpleUploadedFile(f"{title}.png", png(), content_type="image/png")
    admin_client.post(ADD, add_form(account, upload, title=title, lifetime="permanent"), follow=True)
    item = MediaAsset.objects.get(title=title)
    assert item.media_id, item.last_error
    assert SandboxMedia.objects.filter(media_id=item.media_id, lifetime="permanent").exists()
    return item


def test_deleting_permanent_media_deletes_it_on_wechat_first(wechat, admin_client, account):
    from wechat.sandbox.models import SandboxCall, SandboxMedia

    item = _permanent_on_wechat(admin_client, account, "门头照")
    response = admin_client.post(f"{CHANGELIST}{item.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not MediaAsset.objects.filter(pk=item.pk).exists()
    assert not SandboxMedia.objects.filter(media_id=item.media_id).exists()
    assert SandboxCall.objects.filter(path__endswith="/material/del_material").count() == 1


def test_an_entry_whose_deletion_wechat_refuses_is_kept_with_the_reason(wechat, admin_client, account):
    from wechat import errors
    from wechat.sandbox import faults
    from wechat.sandbox.models import SandboxMedia

    item = _permanent_on_wechat(admin_client, account, "活动海报")
    faults.inject("daily_quota", endpoint="/cgi-bin/material/del_material", account=account)
    response = admin_client.post(f"{CHANGELIST}{item.pk}/delete/", {"post": "yes"}, follow=True)
    html = response.content.decode()
    assert MediaAsset.objects.filter(pk=item.pk).exists()  # nothing forgotten
    assert SandboxMedia.objects.filter(media_id=item.media_id).exists()
    assert "活动海报" in html and errors.describe(45009) in html
    assert not AuditLog.objects.filter(action="media.delete").exists()


def test_bulk_delete_removes_what_wechat_let_go_and_keeps_the_rest(wechat, admin_client, account):
    from wechat.sandbox.models import SandboxMedia

    kept = _permanent_on_wechat(admin_client, account, "保留")
    gone = _permanent_on_wechat(admin_client, account, "删掉")
    temporary = asset(account, "临时", media_id="TEMP-1")  # expires by itself; nothing to delete on WeChat
    # WeChat no longer knows `gone` (deleted on the platform by hand): still deletable here.
    SandboxMedia.objects.filter(media_id=gone.media_id).delete()
    from wechat.sandbox import faults

    faults.inject("busy", endpoint="/cgi-bin/material/del_material", account=account)  # the first one: `kept`
    response = admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "post": "yes", ACTION_CHECKBOX_NAME: [kept.pk, gone.pk, temporary.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert list(MediaAsset.objects.values_list("title", flat=True)) == ["保留"]
    assert "“保留” 未删除" in response.content.decode()
