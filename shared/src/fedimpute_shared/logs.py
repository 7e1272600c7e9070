"""Structured JSON logs: one JSON object per line with service, request id and user id.

Secrets never reach a log line: :class:`RedactingFilter` masks bearer tokens, ``Authorization``
values, ``password``/``secret``/``token`` key-value pairs, signed download-link tokens
(``/download/<token>``) and WebSocket tickets (``?ticket=``) in every message, whatever logger
emits it (ours, uvicorn's, httpx's).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from fedimpute_shared.context import request_id_var, user_id_var

__all__ = [
    "DOWNLOAD_LINK_TOKEN",
    "JsonFormatter",
    "PlainFormatter",
    "RedactingFilter",
    "configure_logging",
    "redact",
    "redact_value",
]

# The token segment of a signed download link path, at file-manager and at the gateway.
DOWNLOAD_LINK_TOKEN = re.compile(r"(/download/)[^/?#\s\"']+")

_REDACTIONS = [
    # Credentials in a URL (postgresql://user:password@host, redis://:password@host).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^@/\s'\"]+@"), r"\1[REDACTED]@"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",\s]+"), r"\1[REDACTED]"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|client_secret)['\"]?\s*[:=]\s*['\"]?)"
            r"[^'\"&,\s]+"
        ),
        r"\1[REDACTED]",
    ),
    # Signed download links carry their credential in the path (/files/download/<token>)
    (DOWNLOAD_LINK_TOKEN, r"\1[REDACTED]"),
    # WebSocket tickets ride in the query string (?ticket=...)
    (re.compile(r"(?i)([?&]ticket=)[^&#\s\"']+"), r"\1[REDACTED]"),
    # JWTs anywhere (three base64url segments starting with eyJ)
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
]


def redact(text: str) -> str:
    """Mask credentials in ``text``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


_SECRET_KEY = re.compile(r"(?i)password|passwd|secret|token|api[_-]?key|private|credential")


def redact_value(value: Any, key: str = "") -> Any:
    """``value`` (a log record's ``extra`` field) with credentials masked, at any depth: strings
    through :func:`redact`, and the whole value of a key that names a secret."""
    if key and _SECRET_KEY.search(key) and isinstance(value, str | bytes) and value:
        return "[REDACTED]"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra={...}`` fields are included as keys."""

    _RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := request_id_var.get():
            entry["request_id"] = request_id
        if user_id := user_id_var.get():
            entry["user_id"] = user_id
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                # extra={...} fields are written as given: mask what they may carry
                # (a settings dump, a URL with a password) like the message itself.
                entry[key] = redact_value(value, key)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for local development (LOG_JSON=false), request id included."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        return f"{line} [rid={request_id}]" if request_id else line


def configure_logging(service: str, level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route every logger (uvicorn's included) through one redacting handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_lines else PlainFormatter(service))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers[:] = []
        uv_logger.propagate = True
    # Our middleware writes the access log with request ids; uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs full URLs at INFO (which may carry ?token=); keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
