"""Logging helpers: a request id on every line, secrets redacted, optional JSON.

Secrets (app secret, access token, AES key) must never reach a log line, so the
redaction runs as a filter on the handler, after every formatter argument has
been merged into the message.
"""

import contextvars
import json
import logging
import re
import uuid

request_id_var = contextvars.ContextVar("request_id", default="-")

# access_token=..., secret=..., appsecret=... in URLs and query strings, and the
# same names as JSON keys.
_SECRET_PARAM = re.compile(
    r"(?i)((?:access_token|secret|appsecret|app_secret|encoding_aes_key|aes_key)"
    r"(?:=|\"\s*:\s*\"|'\s*:\s*'))([^&\s\"']+)"
)


def redact(text):
    """Hide every secret-looking parameter value in `text`."""
    if not text:
        return text
    return _SECRET_PARAM.sub(r"\1***", str(text))


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


class RequestIdMiddleware:
    """Tag each request with an id (the proxy's X-Request-ID when present)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request.headers.get("X-Request-ID") or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid[:64])
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = rid[:64]
        return response
