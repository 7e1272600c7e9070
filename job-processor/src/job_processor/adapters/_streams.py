"""Streaming both ways: a multipart/form-data body whose file parts are read from file-manager
chunk by chunk (never a whole VCF in memory), and a streamed download of a remote result.

httpx's own `files=` needs synchronous file objects, so the body is written here (RFC 7578).
Its exact length is known in advance from the input sizes, so it is sent with a
`Content-Length` rather than chunked (some proxies in front of Cloudgene refuse chunked uploads),
and a file that streams a different number of bytes than its recorded size stops the upload.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from job_processor.adapters._http import MAX_MESSAGE_CHARS, raise_for_status
from job_processor.adapters.base import AdapterError, InputFile, RemoteUnavailable

__all__ = ["FilePart", "Multipart", "TextPart", "stream_get"]


@dataclass(frozen=True)
class TextPart:
    name: str
    value: str
    content_type: str | None = None


@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str
    file: InputFile
    content_type: str = "application/octet-stream"


def _quote(value: str) -> str:
    """A header parameter value: quotes, backslashes and line breaks escaped (HTML5 form rules)."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class Multipart:
    """A multipart/form-data body of text and streamed file parts, with its exact length."""

    def __init__(self, parts: Sequence[TextPart | FilePart]) -> None:
        self.boundary = "fedimpute-" + secrets.token_hex(16)
        self.parts = list(parts)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self, part: TextPart | FilePart) -> bytes:
        lines = [f"--{self.boundary}"]
        if isinstance(part, FilePart):
            lines.append(
                f'Content-Disposition: form-data; name="{_quote(part.name)}"; '
                f'filename="{_quote(part.filename)}"'
            )
            lines.append(f"Content-Type: {part.content_type}")
        else:
            lines.append(f'Content-Disposition: form-data; name="{_quote(part.name)}"')
            if part.content_type:
                lines.append(f"Content-Type: {part.content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @property
    def length(self) -> int | None:
        """The exact body length, or None when an input's size is not known (then chunked)."""
        total = len(f"--{self.boundary}--\r\n")
        for part in self.parts:
            if isinstance(part, FilePart) and part.file.size <= 0:
                return None
            body = part.file.size if isinstance(part, FilePart) else len(part.value.encode())
            total += len(self._head(part)) + body + 2
        return total

    @property
    def headers(self) -> dict[str, str]:
        length = self.length
        if length is None:
            return {"Content-Type": self.content_type}
        return {"Content-Type": self.content_type, "Content-Length": str(length)}

    async def body(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield self._head(part)
            if isinstance(part, FilePart):
                async for chunk in self._file(part.file):
                    yield chunk
            else:
                yield part.value.encode()
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    @staticmethod
    async def _file(item: InputFile) -> AsyncIterator[bytes]:
        """The file's chunks; with a recorded size, exactly that many bytes or an error (the
        declared Content-Length would otherwise be wrong)."""
        sent = 0
        async with item.open() as chunks:
            async for chunk in chunks:
                sent += len(chunk)
                if 0 < item.size < sent:
                    break
                yield chunk
        if item.size > 0 and sent != item.size:
            raise AdapterError(
                f"input {item.filename} streamed {sent} bytes, not the {item.size} recorded"
            )


@asynccontextmanager
async def stream_get(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    *,
    headers: dict[str, str] | None = None,
    chunk_size: int = 1024 * 1024,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """GET `url` following redirects (Cloudgene hands results to object storage with a 302) and
    yield its body chunk by chunk; error statuses raise before any byte is yielded."""
    try:
        async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise_for_status(await _error_answer(response), what)

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for chunk in response.aiter_bytes(chunk_size):
                        yield chunk
                except httpx.TimeoutException:
                    raise RemoteUnavailable(f"{what}: the download stalled") from None
                except httpx.TransportError as exc:
                    raise RemoteUnavailable(
                        f"{what}: the download broke off ({type(exc).__name__})"
                    ) from None

            yield chunks()
    except httpx.TimeoutException:
        raise RemoteUnavailable(f"{what}: the service did not answer in time") from None
    except httpx.TransportError as exc:
        raise RemoteUnavailable(
            f"{what}: cannot reach the service ({type(exc).__name__})"
        ) from None


async def _error_answer(response: httpx.Response) -> httpx.Response:
    """The error answer with at most a few KiB of its body, so its message can be shown."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) > MAX_MESSAGE_CHARS * 8:
            break
    headers = {"content-type": response.headers.get("content-type", "")}
    return httpx.Response(response.status_code, headers=headers, content=kept)
