"""``POST /files``: a simple streaming upload, as a multipart form (browsers) or a raw body
(scripts: ``curl -X POST -T file.vcf.gz '.../files?filename=file.vcf.gz'``).

The body is read chunk by chunk from the ASGI stream; multipart is parsed with python-multipart's
streaming parser directly (Starlette's form parser would spool the file to a temporary file
first). Any failure, including the client going away, aborts the pending write: no bytes, no row.

``POST /internal/files`` (``internal_router``): job-processor stores a result, report or log file
of a user's job the same way.
"""

from __future__ import annotations

import email.message
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from fedimpute_shared.body_limit import streams_body
from fedimpute_shared.deps import SessionmakerDep

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from fedimpute_shared.problems import BadRequest, PayloadTooLarge, Unprocessable, problem_responses
from fedimpute_shared.text import ascii_count
from file_manager.dependencies import (
    JobProcessor,
    MetricsDep,
    OnBehalfOf,
    QueueDep,
    SettingsDep,
    StorageDep,
    Writer,
    public_base,
)
from file_manager.errors import InsufficientStorage
from file_manager.files.access import actor_of
from file_manager.files.service import to_out
from file_manager.models import FileKind, FileStatus, StoredFile
from file_manager.uploads.service import SimpleUpload, UploadContext, UploadRequest, validate_now

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/files", tags=["uploads"])

MAX_FIELD_BYTES = 4096
TEXT_FIELDS = ("sha256", "md5", "build")


def filename_from_disposition(value: str | None) -> str | None:
    """``filename*`` (RFC 6266/5987) or ``filename`` of a Content-Disposition value."""
    if not value:
        return None
    message = email.message.Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return str(name) if name is not None else None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (multipart form or raw body), streamed to storage",
    responses=problem_responses(PayloadTooLarge, InsufficientStorage, Unprocessable, BadRequest),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "sha256": {"type": "string"},
                            "md5": {"type": "string"},
                            "build": {"type": "string", "enum": ["hg19", "hg38"]},
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
@streams_body
async def upload(
    request: Request,
    user: Writer,
    settings: SettingsDep,
    storage: StorageDep,
    sessionmaker: SessionmakerDep,
    queue: QueueDep,
    metrics: MetricsDep,
    filename: Annotated[
        str | None, Query(max_length=2048, description="Raw body: the file name.")
    ] = None,
    build: Annotated[str | None, Query(description="Declared build: hg19 or hg38.")] = None,
    sha256: Annotated[str | None, Query(description="Expected SHA-256 (hex or base64).")] = None,
    md5: Annotated[str | None, Query(description="Expected MD5 (hex or base64).")] = None,
    wait: Annotated[
        bool, Query(description="Validate before answering; an invalid VCF is refused (422).")
    ] = False,
) -> JSONResponse:
    headers = request.headers
    length = headers.get("content-length")
    req = UploadRequest(
        owner_id=user.user_id,
        actor=f"user:{user.subject}",
        filename=filename
        or _header_name(headers.get("x-file-name"))
        or filename_from_disposition(headers.get("content-disposition")),
        declared_build=build,
        expected_sha256=sha256 or headers.get("x-checksum-sha256"),
        expected_md5=md5 or headers.get("x-checksum-md5") or headers.get("content-md5"),
        content_length=ascii_count(length),
    )
    ctx = UploadContext(sessionmaker, storage, settings)
    content_type = headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        req.content_length = None  # the form's framing is counted in it, not only the file
        file = await _multipart(ctx, req, request, content_type)
    else:
        file = await _raw(ctx, req, request)
    metrics.uploads.labels("simple").inc()
    metrics.upload_bytes.inc(file.size_bytes)
    if file.status is FileStatus.VALIDATING:
        if wait:
            file = await validate_now(ctx, file, queue)
        else:
            queue.submit(file.id)
    location = f"{public_base(request, settings)}/{file.id}"
    return JSONResponse(
        to_out(file).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": location},
    )


def _header_name(value: str | None) -> str | None:
    """``X-File-Name``: percent-encoded UTF-8 (HTTP header values are ASCII)."""
    if not value:
        return None
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise Unprocessable("X-File-Name must be percent-encoded UTF-8") from None


async def _raw(ctx: UploadContext, req: UploadRequest, request: Request) -> StoredFile:
    upload = SimpleUpload(ctx, req, request)
    try:
        await upload.begin()
        async for chunk in request.stream():
            await upload.write(chunk)
        return await upload.complete()
    except ClientDisconnect:
        await upload.abort()
        raise _disconnected(req) from None
    except BaseException:
        await upload.abort()
        raise


def _disconnected(req: UploadRequest) -> BadRequest:
    logger.info("client disconnected during the upload of %r; nothing kept", req.filename)
    return BadRequest("the client disconnected before the upload completed; nothing was kept")


class _FormReader:
    """Drives python-multipart's streaming parser and routes the file part into an upload."""

    def __init__(self, ctx: UploadContext, req: UploadRequest, request: Request) -> None:
        self.ctx, self.req, self.request = ctx, req, request
        self.upload: SimpleUpload | None = None
        self.events: list[tuple[str, Any]] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None  # "file", a text field name, or "ignored"
        self._field = bytearray()
        self.done = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", dict(self._headers))),
            "on_part_data": lambda d, s, e: self.events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_end": lambda: self.events.append(("finished", None)),
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _add(self, what: str, data: bytes) -> None:
        if what == "field":
            self._header_field += data
        else:
            self._header_value += data

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    async def handle_events(self) -> None:
        events, self.events = self.events, []
        for kind, value in events:
            if kind == "headers":
                await self._start_part(value)
            elif kind == "data":
                await self._data(value)
            elif kind == "end":
                self._end_part()
            elif kind == "finished":
                self.done = True

    async def _start_part(self, headers: dict[bytes, bytes]) -> None:
        raw = headers.get(b"content-disposition", b"")
        # Parsed as bytes (python-multipart reads them as latin-1, so every byte survives): a
        # decoded str holding a character latin-1 cannot encode ("名", or U+FFFD where the
        # name was not UTF-8) made the parser raise UnicodeEncodeError, a 500.
        _, options = parse_options_header(raw)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        disposition = raw.decode("utf-8", "replace")
        if name == "file":
            if self.upload is not None:
                raise Unprocessable("send exactly one file part named 'file'")
            self.req.filename = filename_from_disposition(disposition) or self.req.filename
            self.upload = SimpleUpload(self.ctx, self.req, self.request)
            await self.upload.begin()
            self._part = "file"
        elif name in TEXT_FIELDS:
            self._part, self._field = name, bytearray()
        else:
            self._part = "ignored"

    async def _data(self, data: bytes) -> None:
        if self._part == "file":
            assert self.upload is not None
            await self.upload.write(data)
        elif self._part in TEXT_FIELDS:
            self._field += data
            if len(self._field) > MAX_FIELD_BYTES:
                raise Unprocessable(f"the form field {self._part!r} is too long")

    def _end_part(self) -> None:
        if self._part in TEXT_FIELDS:
            value = self._field.decode("utf-8", "replace").strip()
            if self._part == "build":
                self.req.declared_build = value
            elif self._part == "sha256":
                self.req.expected_sha256 = value
            else:
                self.req.expected_md5 = value
        self._part = None


async def _multipart(
    ctx: UploadContext, req: UploadRequest, request: Request, content_type: str
) -> StoredFile:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart body has no boundary")
    reader = _FormReader(ctx, req, request)
    parser = MultipartParser(boundary, cast("MultipartCallbacks", reader.callbacks()))
    try:
        await _feed(parser, reader, request.stream())
        if reader.upload is None:
            raise Unprocessable("the form has no part named 'file'")
        if not reader.done:
            raise BadRequest("the multipart body ended early")
        return await reader.upload.complete()
    except ClientDisconnect:
        if reader.upload is not None:
            await reader.upload.abort()
        raise _disconnected(req) from None
    except BaseException:
        if reader.upload is not None:
            await reader.upload.abort()
        raise


async def _feed(parser: MultipartParser, reader: _FormReader, chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from None
        await reader.handle_events()
    parser.finalize()
    await reader.handle_events()


# ------------------------------------------------------------------ internal (job-processor)

# Results are not refused for quota (the job already ran) but count towards it; the size limit
# still applies. Service tokens only; never routed by the gateway.
internal_router = APIRouter(prefix="/internal/files", tags=["internal"])


@internal_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Store a result (or report/log) file of a user's job; raw body",
    responses=problem_responses(PayloadTooLarge, BadRequest),
)
@streams_body
async def store_result(
    request: Request,
    user_id: OnBehalfOf,
    job_id: Annotated[uuid.UUID, Query()],
    filename: Annotated[str, Query(max_length=2048)],
    settings: SettingsDep,
    storage: StorageDep,
    sessionmaker: SessionmakerDep,
    caller: JobProcessor,
    kind: Annotated[FileKind, Query()] = FileKind.RESULT,
    sha256: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    if kind is FileKind.INPUT:
        raise BadRequest("job-processor stores result, report or log files, not inputs")
    length = request.headers.get("content-length")
    req = UploadRequest(
        owner_id=user_id,
        actor=actor_of(caller),
        filename=filename,
        kind=kind,
        job_id=job_id,
        expected_sha256=sha256,
        content_length=ascii_count(length),
        enforce_quota=False,
        on_behalf_of=user_id,
    )
    upload = SimpleUpload(UploadContext(sessionmaker, storage, settings), req, request)
    try:
        await upload.begin()
        async for chunk in request.stream():
            await upload.write(chunk)
        file = await upload.complete()
    except ClientDisconnect:
        await upload.abort()
        raise BadRequest("the client disconnected; nothing was kept") from None
    except BaseException:
        await upload.abort()
        raise
    return JSONResponse(to_out(file).model_dump(mode="json"), status_code=201)
