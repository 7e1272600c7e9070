"""Per-request context carried in contextvars: the request id and the caller's user id.

The observability middleware sets them; logs and outbound HTTP calls read them, so a request id
follows a request across every hop without being passed by hand.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

__all__ = [
    "REQUEST_ID_HEADER",
    "accept_request_id",
    "current_request_id",
    "new_request_id",
    "request_id_var",
    "user_id_var",
]

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a client's request id only when it is short and plain, so it is safe to log and echo.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    """The incoming id when it is well formed, else a fresh one."""
    if candidate and _VALID_REQUEST_ID.fullmatch(candidate):
        return candidate
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()
