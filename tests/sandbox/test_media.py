"""Temporary media (§8.1) and permanent material (§8.2)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from wechat.sandbox import follower as wx
from wechat.sandbox import media_samples
from wechat.sandbox.models import SandboxMedia

JPEG = b"\xff\xd8\xff\xe0" + bytes(100)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(100)


def upload(api, kind, data, name, path="/cgi-bin/media/upload", **extra):
    files = {"media": SimpleUploadedFile(name, data)} if data is not None else {}
    return api.client.post(api.url(path, {"type": kind}), data={**files, **extra}).json()


def test_an_uploaded_image_can_be_fetched_back(api, account):
    png = media_samples.png()
    answer = upload(api, "image", png, "图片.png")
    assert answer["type"] == "image"
    assert isinstance(answer["created_at"], int)
    response = api.get("/cgi-bin/media/get", media_id=answer["media_id"])
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "attachment" in response["Content-disposition"]
    assert response.content == png


def test_video_media_is_fetched_as_a_video_url(api, account):
    media_id = upload(api, "video", MP4, "clip.mp4")["media_id"]
    answer = api.get("/cgi-bin/media/get", media_id=media_id).json()
    assert set(answer) == {"video_url"}
    path = answer["video_url"].split("testserver", 1)[1]
    assert api.client.get(path).content == MP4


def test_temporary_media_expires_after_three_days(api, account, clock):
    media_id = upload(api, "voice", media_samples.amr(), "v.amr")["media_id"]
    clock.advance(days=3, seconds=-1)
    api.token = wx.issue_token(account, now=clock.now)  # the first token died long ago
    assert api.get("/cgi-bin/media/get", media_id=media_id).content.startswith(b"#!AMR")
    clock.advance(seconds=1)
    response = api.get("/cgi-bin/media/get", media_id=media_id)
    # Errors come back as JSON with HTTP 200 (§8.1).
    assert response.status_code == 200
    assert response.json()["errcode"] == 40007


def test_an_unknown_media_id_is_40007_as_json(api, account):
    response = api.get("/cgi-bin/media/get", media_id="nope")
    assert response.status_code == 200
    assert response.json()["errcode"] == 40007


@pytest.mark.parametrize(
    ("kind", "data", "name", "errcode"),
    [
        ("thumb", JPEG + bytes(64 * 1024), "t.jpg", 40012),
        ("voice", b"#!AMR\n" + bytes(2 * 1024 * 1024), "v.amr", 40010),
        ("image", b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024), "i.png", 40009),
        ("video", MP4 + bytes(10 * 1024 * 1024), "v.mp4", 40011),
        ("image", MP4, "clip.png", 40005),
        ("voice", b"plain text", "notes.txt", 40005),
        ("thumb", media_samples.png(), "t.png", 40005),
        ("document", JPEG, "x.jpg", 40004),
        ("image", None, "", 41005),
    ],
)
def test_uploads_outside_the_limits_are_refused(api, account, kind, data, name, errcode):
    assert upload(api, kind, data, name)["errcode"] == errcode
    assert not SandboxMedia.objects.exists()


def test_a_thumb_answers_with_thumb_media_id_too(api, account):
    answer = upload(api, "thumb", JPEG, "t.jpg")
    assert answer["thumb_media_id"] == answer["media_id"]


def test_permanent_image_gets_a_url_and_no_expiry(api, account):
    answer = upload(api, "image", media_samples.png(), "p.png", path="/cgi-bin/material/add_material")
    assert set(answer) == {"media_id", "url"}
    media = SandboxMedia.objects.get()
    assert media.lifetime == "permanent"
    assert media.expires_at is None
    # Permanent material is not served by media/get.
    assert api.get("/cgi-bin/media/get", media_id=answer["media_id"]).json()["errcode"] == 40007


def test_permanent_material_can_be_deleted_once_and_temporary_media_not_at_all(api, account):
    permanent = upload(api, "image", media_samples.png(), "p.png", path="/cgi-bin/material/add_material")["media_id"]
    temporary = upload(api, "image", media_samples.png(), "t.png")["media_id"]
    delete = "/cgi-bin/material/del_material"
    assert api.post(delete, {"media_id": permanent}).json() == {"errcode": 0, "errmsg": "ok"}
    assert not SandboxMedia.objects.filter(media_id=permanent).exists()
    assert api.post(delete, {"media_id": permanent}).json()["errcode"] == 40007  # already gone
    assert api.post(delete, {"media_id": temporary}).json()["errcode"] == 40007  # not material
    assert SandboxMedia.objects.filter(media_id=temporary).exists()
    assert api.post(delete, {}).json()["errcode"] == 40007


def test_permanent_video_needs_a_description(api, account):
    path = "/cgi-bin/material/add_material"
    assert upload(api, "video", MP4, "v.mp4", path=path)["errcode"] == 47001
    answer = upload(api, "video", MP4, "v.mp4", path=path, description='{"title": "开箱", "introduction": "介绍"}')
    assert set(answer) == {"media_id"}
    assert SandboxMedia.objects.get().title == "开箱"


def test_what_a_follower_sends_can_be_fetched_by_the_console(api, account):
    result = wx.act(account, "o_photographer", "image", deliver=False)
    media_id = result.push.fields["media_id"]
    assert f"<MediaId><![CDATA[{media_id}]]></MediaId>" in result.xml
    response = api.get("/cgi-bin/media/get", media_id=media_id)
    assert response.content.startswith(b"\x89PNG")
    voice = wx.act(account, "o_photographer", "voice", deliver=False).push.fields["media_id"]
    assert api.get("/cgi-bin/media/get", media_id=voice).content.startswith(b"#!AMR")
