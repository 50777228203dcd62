"""Logging: one line per event, a request id on every line, secrets redacted, optional JSON.

* The request id comes from `request_id_var`. RequestIdMiddleware sets it for
  Django requests (the proxy's X-Request-ID when there is one), the webhook's
  fast path (wechat/consumers.py) for pushes, and `task_context` for each task a
  worker runs (`task-<id>`, after the request's id when a task runs inside a
  request, as with the immediate backend).
* Secrets (app secret, tokens, AES key, passwords in URLs) must never reach a
  log line. RedactSecretsFilter rewrites the merged message and the formatted
  traceback of every record on the handler; the formatters redact the whole line
  once more, so a secret quoted by an exception (requests puts the full URL, with
  `access_token=`, into its messages) is caught too. Known values — the
  configured WeChat secrets and SECRET_KEY — are hidden wherever they appear.
* One event, one line: the plain formatter escapes newlines (a traceback
  becomes one line with `\\n` in it); the JSON formatter emits one object per line.
"""

import contextvars
import json
import logging
import re
import threading
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

request_id_var = contextvars.ContextVar("request_id", default="-")

_KEYS = (
    r"access_token|refresh_token|component_access_token|token|secret|appsecret|app_secret|client_secret"
    r"|encoding_aes_key|encodingaeskey|aes_key|aeskey|password|passwd|secret_key"
)
# key=value in URLs and query strings, "key": "value" in JSON, 'key': 'value' in reprs.
_SECRET_PARAM = re.compile(rf"(?i)(\b(?:{_KEYS})(?:=|\"\s*:\s*\"|'\s*:\s*'))([^&\s\"',]+)")
# user:password@ in any URL (redis://:pw@host, postgres://user:pw@host).
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s/]+)(@)")
# Values this short are not worth hunting (and would hide ordinary words).
_MIN_KNOWN = 8
_known = None
_known_lock = threading.Lock()


def _known_secrets():
    """The configured secrets, longest first; read once, after settings are ready."""
    global _known
    if _known is None:
        with _known_lock:
            if _known is None:
                try:
                    from django.conf import settings

                    values = [
                        getattr(settings, name, "")
                        for name in ("WECHAT_APP_SECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY", "SECRET_KEY")
                    ]
                except Exception:  # settings not configured (a bare script): only the patterns apply
                    return ()
                _known = tuple(sorted({v for v in values if v and len(v) >= _MIN_KNOWN}, key=len, reverse=True))
    return _known


def forget_known_secrets():
    """Re-read the configured secrets on next use (tests that change settings)."""
    global _known
    _known = None


def redact(text):
    """Hide every secret-looking value in `text`: parameters, URL passwords, configured secrets."""
    if not text:
        return text
    text = _SECRET_PARAM.sub(r"\1***", str(text))
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    for value in _known_secrets():
        if value in text:
            text = text.replace(value, "***")
    return text


def one_line(text):
    return text.replace("\r", "\\r").replace("\n", "\\n")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    """Redact the record itself, so any formatter (or a test's capture handler) sees it clean."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class PlainFormatter(logging.Formatter):
    default_format = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

    def __init__(self, fmt=None, *args, **kwargs):
        super().__init__(fmt or self.default_format, *args, **kwargs)

    def format(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return one_line(redact(super().format(record)))


def _iso_time(record):
    """ISO 8601 with milliseconds and the offset, e.g. 2026-11-28T18:00:01.042+0800."""
    local = time.localtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{int(record.msecs):03d}" + time.strftime("%z", local)


class JsonFormatter(logging.Formatter):
    def format(self, record):
        payload = {
            "time": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
            "message": redact(record.getMessage()),
        }
        if record.exc_info or record.exc_text:
            payload["exc"] = redact(record.exc_text or self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(record.stack_info)
        return json.dumps(payload, ensure_ascii=False)


def clean_request_id(value):
    # A client-chosen id ends up in every log line: keep it short and printable.
    value = "".join(ch for ch in (value or "") if ch.isalnum() or ch in "-_.:")[:64]
    return value or uuid.uuid4().hex[:16]


class RequestIdMiddleware:
    """Tag each request with an id (the proxy's X-Request-ID when present).

    Sync and async capable, so an async view (/healthz) runs without a thread
    hop and a slow probe never holds the thread sync views share.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        rid = clean_request_id(request.headers.get("X-Request-ID"))
        token = request_id_var.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response

    async def __acall__(self, request):
        rid = clean_request_id(request.headers.get("X-Request-ID"))
        token = request_id_var.set(rid)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid
        return response


# --- tasks ------------------------------------------------------------------------
# django-tasks announces each task run with its own task_started / task_finished
# (its logging uses them too). They are the only hook a worker loop we do not
# own offers; they set a logging context here and change no data.

_task_previous = threading.local()


def _task_started(sender, task_result, **kwargs):
    outer = request_id_var.get()
    stack = getattr(_task_previous, "stack", None)
    if stack is None:
        stack = _task_previous.stack = []
    stack.append(outer)
    rid = f"task-{str(task_result.id)[:12]}"
    request_id_var.set(rid if outer == "-" else f"{outer}>{rid}")


def _task_finished(sender, task_result, **kwargs):
    stack = getattr(_task_previous, "stack", None)
    request_id_var.set(stack.pop() if stack else "-")


def install_task_context():
    from django_tasks.signals import task_finished, task_started

    task_started.connect(_task_started, dispatch_uid="config.logging.task_started")
    task_finished.connect(_task_finished, dispatch_uid="config.logging.task_finished")


install_task_context()
