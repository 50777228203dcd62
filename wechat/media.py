"""Media both ways (../shared/wechat-api.md §8): what followers sent, and the library we send from.

Inbound: image / voice / video / shortvideo media ids live only 3 days
(§8.1), so a task downloads each one into Django storage soon after arrival,
retries transient failures with back-off, and leaves the outcome visible on
the row (media_status / media_error / media_attempts) and in a LiveUpdate.

Library: `validate_file` checks the §8 limits before anything is uploaded;
`upload_asset` sends a MediaAsset to WeChat as temporary (3 days) or
permanent material.
"""

import json
import logging
import mimetypes
import os
from datetime import timedelta
from urllib.parse import quote

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from wechat import client, errors, live
from wechat.models import InboundMessage, MediaAsset

log = logging.getLogger("wechat.media")

TEMPORARY_LIFETIME = timedelta(days=3)
MAX_FETCH_ATTEMPTS = 5
FETCH_BACKOFF_SECONDS = (5, 30, 120, 600)
# Largest inbound file we accept (video is 10 MB, §8.1), with headroom.
MAX_FETCH_BYTES = 25 * 1024 * 1024

_MB = 1024 * 1024
# kind → (max bytes, temporary formats, permanent formats) — §8.1 and §8.2.
LIMITS = {
    "image": (10 * _MB, ("png", "jpeg", "jpg", "gif"), ("bmp", "png", "jpeg", "jpg", "gif")),
    "voice": (2 * _MB, ("amr", "mp3"), ("mp3", "wma", "wav", "amr")),
    "video": (10 * _MB, ("mp4",), ("mp4",)),
    "thumb": (64 * 1024, ("jpg", "jpeg"), ("jpg", "jpeg")),
}
_KIND_LABEL = {"image": "图片", "voice": "语音", "video": "视频", "thumb": "缩略图"}
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/speex": ".speex",
    "video/mp4": ".mp4",
}


class MediaError(Exception):
    """A media file cannot be uploaded or fetched; the text says why, in plain Chinese."""


# --- inbound media --------------------------------------------------------------


def enqueue_fetch(inbound_id, *, run_after=None):
    """Schedule the download of an inbound message's media (called by wechat.inbound on commit)."""
    from wechat import tasks

    return tasks.enqueue_media_fetch(inbound_id, run_after=run_after)


def fetch_inbound(*, inbound_id):
    """Download one inbound message's media into storage. Returns the resulting media_status."""
    message = InboundMessage.objects.select_related("account").filter(pk=inbound_id).first()
    if message is None or message.media_status != InboundMessage.MediaStatus.PENDING:
        return message.media_status if message else "missing"
    InboundMessage.objects.filter(pk=inbound_id).update(media_attempts=F("media_attempts") + 1)
    attempt = message.media_attempts + 1
    try:
        content, content_type, filename = _download(message)
    except errors.WeChatError as exc:
        return _fetch_failed(message, exc, attempt)
    name = f"{message.pk}{_extension(content_type, filename, message.msg_type)}"
    stored = ContentFile(content)
    message.media_file.save(name, stored, save=False)
    with transaction.atomic():
        updated = InboundMessage.objects.filter(pk=inbound_id, media_status=InboundMessage.MediaStatus.PENDING).update(
            media_file=message.media_file.name,
            media_content_type=content_type[:100],
            media_status=InboundMessage.MediaStatus.FETCHED,
            media_error="",
        )
        if not updated:  # a concurrent run stored it first
            message.media_file.storage.delete(message.media_file.name)
            return InboundMessage.objects.get(pk=inbound_id).media_status
        live.record(
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            kind="media",
            data={
                "message": message.pk,
                "status": InboundMessage.MediaStatus.FETCHED,
                "url": message.media_file.url,
                "content_type": content_type,
                "size": len(content),
            },
        )
    log.info("media of inbound %s stored (%s bytes)", inbound_id, len(content))
    return InboundMessage.MediaStatus.FETCHED


# A pending download whose task died with its worker (kill -9 leaves the
# task row RUNNING for ever) is re-enqueued after this long.
STALE_FETCH = timedelta(minutes=2)


def sweep(*, now=None, batch=100):
    """Re-enqueue pending inbound downloads that have no task waiting. Returns how many."""
    from django_tasks_db.models import DBTaskResult

    from wechat import tasks

    now = now or timezone.now()
    stale = InboundMessage.objects.filter(
        media_status=InboundMessage.MediaStatus.PENDING, received_at__lte=now - STALE_FETCH
    )
    count = 0
    for inbound_id in list(stale.values_list("pk", flat=True)[:batch]):
        waiting = DBTaskResult.objects.filter(
            status="READY", task_path=tasks.fetch_media.module_path, args_kwargs__kwargs__inbound_id=inbound_id
        ).exists()
        if not waiting:
            enqueue_fetch(inbound_id)
            count += 1
    return count


def _download(message):
    # §8.1: errors come back as JSON with HTTP 200; video comes back as JSON {"video_url": …}.
    reply = client.call(
        message.account, "GET", "/cgi-bin/media/get", params={"media_id": message.media_id}, binary_ok=True
    )
    if reply.data is not None:
        video_url = reply.data.get("video_url")
        if not isinstance(video_url, str) or not video_url.startswith(("http://", "https://")):
            raise errors.BadResponse(reply.status)
        reply = client.request(message.account, "GET", "", url=video_url, binary_ok=True)
        if reply.data is not None:
            raise errors.BadResponse(reply.status)
    if not reply.content:
        raise errors.BadResponse(reply.status)
    if len(reply.content) > MAX_FETCH_BYTES:
        raise MediaTooLarge(len(reply.content))
    disposition = reply.headers.get("Content-Disposition", "") or reply.headers.get("Content-disposition", "")
    filename = ""
    if "filename=" in disposition:
        filename = disposition.split("filename=", 1)[1].strip().strip('"')
    content_type = reply.content_type.split(";", 1)[0].strip() or "application/octet-stream"
    return reply.content, content_type, filename


class MediaTooLarge(errors.WeChatError):
    def __init__(self, size):
        super().__init__(f"文件过大（{size} 字节），未保存")


def _fetch_failed(message, exc, attempt):
    # A download is a GET: retrying cannot duplicate anything, so transport
    # trouble of any kind is retried; WeChat's errcodes (expired id…) are final.
    transient = exc.retry or isinstance(exc, errors.Ambiguous | errors.BadResponse)
    retry = transient and attempt < MAX_FETCH_ATTEMPTS
    status = InboundMessage.MediaStatus.PENDING if retry else InboundMessage.MediaStatus.FAILED
    text = f"第 {attempt} 次下载失败：{exc}" + ("，稍后重试" if retry else "")
    with transaction.atomic():
        InboundMessage.objects.filter(pk=message.pk, media_status=InboundMessage.MediaStatus.PENDING).update(
            media_status=status, media_error=text[:255]
        )
        live.record(
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            kind="media",
            data={"message": message.pk, "status": status, "error": text, "attempts": attempt},
        )
        if retry:
            delay = FETCH_BACKOFF_SECONDS[min(attempt, len(FETCH_BACKOFF_SECONDS)) - 1]
            run_after = timezone.now() + timedelta(seconds=delay)
            transaction.on_commit(lambda: enqueue_fetch(message.pk, run_after=run_after))
    log.warning("media of inbound %s: %s", message.pk, text)
    return status


def _extension(content_type, filename, msg_type):
    if filename and "." in filename:
        ext = os.path.splitext(filename)[1].lower()
        if 1 < len(ext) <= 6 and ext[1:].isalnum():
            return ext
    if content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    guessed = mimetypes.guess_extension(content_type or "")
    if guessed:
        return guessed
    return {"image": ".jpg", "voice": ".amr", "video": ".mp4", "shortvideo": ".mp4"}.get(msg_type, ".bin")


# --- media library --------------------------------------------------------------


def validate_file(kind, lifetime, filename, size):
    """Raise MediaError unless a file of this kind, name and size may be uploaded (§8.1, §8.2)."""
    if kind not in LIMITS:
        raise MediaError(f"不支持的素材类型“{kind}”，可用：图片、语音、视频、缩略图")
    if lifetime not in (MediaAsset.Lifetime.TEMPORARY, MediaAsset.Lifetime.PERMANENT):
        raise MediaError("素材有效期只能是临时（3 天）或永久")
    limit, temporary_formats, permanent_formats = LIMITS[kind]
    formats = temporary_formats if lifetime == MediaAsset.Lifetime.TEMPORARY else permanent_formats
    label = _KIND_LABEL[kind]
    ext = os.path.splitext(filename or "")[1].lower().lstrip(".")
    if ext not in formats:
        raise MediaError(f"{label}素材只支持 {'/'.join(f.upper() for f in formats)} 格式，“{filename}”不行")
    if not size:
        raise MediaError("文件是空的")
    if size > limit:
        raise MediaError(f"{label}素材不能超过 {_human(limit)}，这个文件有 {_human(size)}")


def upload_asset(asset):
    """Upload a MediaAsset's file to WeChat; sets media_id, url, uploaded_at, expires_at. Raises MediaError."""
    name = os.path.basename(asset.file.name or "")
    validate_file(asset.kind, asset.lifetime, name, asset.file.size)
    with asset.file.open("rb") as handle:
        content = handle.read()
    # §8.1: non-ASCII filenames in multipart must be URL-encoded.
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    files = {"media": (quote(name), content, content_type)}
    form = None
    if asset.lifetime == MediaAsset.Lifetime.TEMPORARY:
        path = "/cgi-bin/media/upload"
    else:
        path = "/cgi-bin/material/add_material"
        if asset.kind == MediaAsset.Kind.VIDEO:
            # §8.2: the description is a multipart form field (not the query string).
            description = {"title": asset.title, "introduction": asset.description}
            form = {"description": json.dumps(description, ensure_ascii=False)}
    try:
        reply = client.call(asset.account, "POST", path, params={"type": asset.kind}, files=files, form=form)
        media_id = reply.data.get("media_id") or reply.data.get("thumb_media_id")
        if not media_id:
            raise errors.BadResponse(reply.status)
    except errors.WeChatError as exc:
        asset.last_error = f"上传失败：{exc}"[:255]
        if asset.pk:
            asset.save(update_fields=["last_error"])
        raise MediaError(asset.last_error) from None
    now = timezone.now()
    asset.media_id = media_id
    asset.url = reply.data.get("url", "") or ""
    asset.uploaded_at = now
    asset.expires_at = now + TEMPORARY_LIFETIME if asset.lifetime == MediaAsset.Lifetime.TEMPORARY else None
    asset.last_error = ""
    if asset.pk:
        asset.save(update_fields=["media_id", "url", "uploaded_at", "expires_at", "last_error"])
    else:
        asset.save()
    log.info("media asset %s uploaded as %s %s", asset.pk, asset.lifetime, asset.kind)
    return asset


def delete_on_wechat(asset):
    """Remove a permanent asset from WeChat's material library (§8.2) before its entry goes. Raises MediaError.

    Temporary media cannot be deleted (it expires after 3 days); an id WeChat
    no longer knows (40007) is already gone, which is what deleting wants.
    """
    if asset.lifetime != MediaAsset.Lifetime.PERMANENT or not asset.media_id:
        return
    try:
        client.call(asset.account, "POST", "/cgi-bin/material/del_material", body={"media_id": asset.media_id})
    except errors.APIError as exc:
        if exc.errcode != 40007:
            raise MediaError(f"在微信删除永久素材失败：{exc}"[:255]) from None
    except errors.WeChatError as exc:
        raise MediaError(f"在微信删除永久素材失败：{exc}"[:255]) from None
    log.info("media asset %s deleted on WeChat", asset.pk)


def _human(size):
    if size >= _MB:
        return f"{size / _MB:.0f} MB" if size % _MB == 0 else f"{size / _MB:.1f} MB"
    return f"{size // 1024} KB"
