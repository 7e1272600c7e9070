"""HTTP plumbing shared by the adapters: one place that turns transport failures and status
codes into the `AdapterError` hierarchy, reads bodies with a size bound, and pulls a
human-readable message out of every error shape the remotes use.

Remote answers are untrusted: a body larger than `MAX_BODY_BYTES` or JSON that does not parse is
a `RemoteUnavailable` (a broken or overloaded remote, worth retrying), never a crash; a message
shown to users is unescaped, stripped of HTML and cut to `MAX_MESSAGE_CHARS`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from job_processor.adapters.base import (
    AuthFailed,
    RemoteNotFound,
    RemoteRejected,
    RemoteUnavailable,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "clean_text",
    "error_message",
    "expect_object",
    "parse_json",
    "raise_for_status",
    "send",
]

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_MESSAGE_CHARS = 1000
_TAG = re.compile(r"<[^>]{0,200}>")
_URL_QUERY = re.compile(r"((?:https?|s3|gs)://[^\s?#\"'<>]+)\?[^\s\"'<>]*")


def clean_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Remote text made presentable: HTML unescaped (Cloudgene escapes its messages), tags
    dropped, query strings of URLs removed (a signed input link the remote echoes carries its
    signature there), whitespace collapsed per line, cut to `limit` characters."""
    text = html.unescape(_TAG.sub("", html.unescape(text)))
    text = _URL_QUERY.sub(r"\1?…", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    text = "\n".join(line for line in lines if line).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_from_json(body: Any) -> str | None:
    """`{msg}` (WES), `{message}` (Cloudgene, Spring), problem+json `{title, detail}`,
    OAuth `{error, error_description}`."""
    if not isinstance(body, Mapping):
        return None
    for key in ("msg", "message", "detail", "error_description", "title", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def error_message(response: httpx.Response) -> str:
    """The remote's own words for an error answer, or a generic line naming the status."""
    text = response.text if response.content else ""
    message: str | None = None
    if text:
        try:
            message = _message_from_json(json.loads(text))
        except ValueError:
            message = None
        if message is None and not text.lstrip().startswith(("{", "[", "<!", "<html")):
            message = text  # Cloudgene 3's submit catch-all: a plain `e.toString()` body
    if not message:
        message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return clean_text(message)


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Map an error status to the hierarchy; `what` names the operation for the message."""
    code = response.status_code
    if code < 400:
        return
    message = f"{what}: {error_message(response)}"
    if code in (401, 403):
        raise AuthFailed(message, status_code=code)
    if code == 404:
        raise RemoteNotFound(message, status_code=code)
    if code == 429 or code >= 500:
        raise RemoteUnavailable(message, status_code=code)
    raise RemoteRejected(message, status_code=code)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    what: str,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request and read its body up to `max_bytes`; transport failures (refused,
    reset, timeouts, protocol errors) become `RemoteUnavailable`. Status codes are not checked
    here: the caller reads error bodies first where the status alone is ambiguous."""
    try:
        request = client.build_request(method, url, **kwargs)
        response = await client.send(request, stream=True)
        try:
            size = 0
            chunks: list[bytes] = []
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise RemoteUnavailable(f"{what}: the answer exceeds {max_bytes} bytes")
                chunks.append(chunk)
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        raise RemoteUnavailable(f"{what}: the service did not answer in time") from None
    except httpx.DecodingError:
        raise RemoteUnavailable(f"{what}: the service sent an undecodable body") from None
    except httpx.TransportError as exc:
        raise RemoteUnavailable(
            f"{what}: cannot reach the service ({type(exc).__name__})"
        ) from None
    return _decoded(response, b"".join(chunks))


def _decoded(response: httpx.Response, body: bytes) -> httpx.Response:
    """A complete response holding the decoded body (the streamed one is closed)."""
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


def parse_json(response: httpx.Response, what: str) -> Any:
    """The JSON body of a success answer; anything unparsable is a transient remote fault."""
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        raise RemoteUnavailable(f"{what}: the service sent malformed JSON") from None


def expect_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RemoteUnavailable(f"{what}: unexpected answer (not a JSON object)")
    return body
