"""tus 1.0 routes (core, creation, termination, checksum, expiration) under ``/files/uploads``.

``Location`` of a created upload is path-absolute: ``X-Forwarded-Prefix`` (sent by the gateway)
+ ``/files/uploads/{id}`` when the request carries one, else ``PUBLIC_BASE_PATH`` +
``/uploads/{id}`` (default ``/api/files/uploads/{id}``, what clients see behind the gateway).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from fedimpute_shared.body_limit import streams_body
from fedimpute_shared.db import SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.problems import (
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ProblemError,
    UnsupportedMediaType,
    problem_responses,
)
from fedimpute_shared.text import ascii_count
from file_manager.dependencies import (
    MetricsDep,
    QueueDep,
    SettingsDep,
    StorageDep,
    Writer,
    public_base,
)
from file_manager.errors import ChecksumMismatch, InsufficientStorage, Locked
from file_manager.models import FileStatus
from file_manager.uploads import resumable
from file_manager.uploads.resumable import DigestCache
from file_manager.uploads.service import UploadContext

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


class TusRoute(APIRoute):
    """Every tus response, errors included, carries ``Tus-Resumable``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_header(request: Request) -> Response:
            try:
                response = await handler(request)
            except ProblemError as exc:
                exc.headers.setdefault("Tus-Resumable", TUS_VERSION)
                raise
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
            return response

        return with_header


router = APIRouter(prefix="/files/uploads", tags=["resumable uploads (tus)"], route_class=TusRoute)


def _cache(request: Request) -> DigestCache:
    cache: DigestCache = request.state.tus_digests
    return cache


def _discovery_headers(request: Request) -> dict[str, str]:
    settings = request.state.settings
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(settings.max_file_size_bytes),
        "Tus-Checksum-Algorithm": ",".join(resumable.CHECKSUM_ALGORITHMS),
    }


def _require_tus(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise PreconditionFailed(
            f"this server speaks tus {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}",
            headers={"Tus-Version": TUS_VERSION},
        )


def _int_header(request: Request, name: str) -> int:
    value = ascii_count(request.headers.get(name))
    if value is None:
        raise BadRequest(f"{name} must be given as a non-negative integer in ASCII digits")
    return value


# The tus headers, declared so clients (and the API fuzzer) know what each request needs.
_TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": ["1.0.0"]},
    "description": "The tus protocol version; anything else is a 412",
}
_UPLOAD_OFFSET = {
    "name": "Upload-Offset",
    "in": "header",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
    "description": "Where these bytes go: the offset HEAD reported (ASCII digits)",
}
_UPLOAD_CHECKSUM = {
    "name": "Upload-Checksum",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "'<algorithm> <base64 digest>' of this request's bytes",
}


@router.options("", summary="tus discovery", status_code=204)
@router.options("/{upload_id}", summary="tus discovery", status_code=204, include_in_schema=False)
async def discover(request: Request) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_discovery_headers(request))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a resumable upload (Upload-Length, Upload-Metadata: filename, build, sha256…)",
    responses=problem_responses(
        BadRequest, PayloadTooLarge, InsufficientStorage, PreconditionFailed
    ),
)
async def create_upload(
    request: Request,
    user: Writer,
    settings: SettingsDep,
    storage: StorageDep,
    sessionmaker: SessionmakerDep,
) -> Response:
    _require_tus(request)
    if "upload-defer-length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    creation = resumable.Creation(
        owner_id=user.user_id,
        actor=f"user:{user.subject}",
        length=_int_header(request, "upload-length"),
        metadata=resumable.parse_metadata(request.headers.get("upload-metadata")),
    )
    ctx = UploadContext(sessionmaker, storage, settings)
    file = await resumable.create(ctx, creation, request)
    headers = {
        "Location": f"{public_base(request, settings)}/uploads/{file.id}",
        "Upload-Offset": "0",
        "Upload-Expires": resumable.http_date(file.upload_expires_at) or "",
    }
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head(
    "/{upload_id}",
    summary="Where a resumable upload stands (Upload-Offset)",
    response_class=Response,  # headers only
    responses=problem_responses(NotFound, Gone, PreconditionFailed),
    openapi_extra={"parameters": [_TUS_RESUMABLE]},
)
async def upload_offset(
    upload_id: uuid.UUID, request: Request, session: SessionDep, user: Writer
) -> Response:
    _require_tus(request)
    file = await resumable.find_upload(session, upload_id, user.user_id, user.is_admin)
    offset = file.size_bytes
    if file.status is FileStatus.UPLOADING:
        # the partial object, not the row, knows how far an interrupted PATCH got
        stored = await asyncio.to_thread(request.state.storage.partial_size, file.storage_key)
        if stored is None:
            raise Gone("this upload is gone")
        offset = stored
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Length": str(file.size_bytes),
        "Cache-Control": "no-store",
    }
    raw = file.upload_metadata.get("raw")
    if raw:
        headers["Upload-Metadata"] = resumable.encode_metadata(raw)
    if file.upload_expires_at is not None:
        headers["Upload-Expires"] = resumable.http_date(file.upload_expires_at) or ""
    if file.status is not FileStatus.UPLOADING:
        headers["Location"] = f"{public_base(request, request.state.settings)}/{file.id}"
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Append bytes at Upload-Offset (Content-Type: application/offset+octet-stream)",
    responses=problem_responses(
        BadRequest,
        Conflict,
        NotFound,
        Gone,
        Locked,
        ChecksumMismatch,
        UnsupportedMediaType,
        PayloadTooLarge,
        PreconditionFailed,
    ),
    openapi_extra={
        "parameters": [_TUS_RESUMABLE, _UPLOAD_OFFSET, _UPLOAD_CHECKSUM],
        "requestBody": {
            "required": True,
            "content": {OFFSET_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
@streams_body
async def patch_upload(
    upload_id: uuid.UUID,
    request: Request,
    user: Writer,
    settings: SettingsDep,
    storage: StorageDep,
    sessionmaker: SessionmakerDep,
    queue: QueueDep,
    metrics: MetricsDep,
) -> Response:
    _require_tus(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"a PATCH body must be {OFFSET_CONTENT_TYPE}")
    patch = resumable.Patch(
        upload_id=upload_id,
        owner_id=user.user_id,
        is_admin=user.is_admin,
        offset=_int_header(request, "upload-offset"),
        checksum=resumable.parse_upload_checksum(request.headers.get("upload-checksum")),
    )
    ctx = UploadContext(sessionmaker, storage, settings)
    try:
        file = await resumable.append(ctx, _cache(request), patch, request.stream(), request)
    except ClientDisconnect:
        raise BadRequest("the client disconnected; send HEAD to learn the offset") from None
    if file.status is not FileStatus.UPLOADING and patch.offset < file.size_bytes:
        metrics.uploads.labels("tus").inc()
        metrics.upload_bytes.inc(file.size_bytes)
    if file.status is FileStatus.VALIDATING:
        queue.submit(file.id)
    headers = {"Upload-Offset": str(file.upload_offset)}
    if file.status is FileStatus.UPLOADING and file.upload_expires_at is not None:
        headers["Upload-Expires"] = resumable.http_date(file.upload_expires_at) or ""
    else:
        headers["Location"] = f"{public_base(request, settings)}/{file.id}"
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Terminate an upload in progress (tus termination)",
    responses=problem_responses(NotFound, Conflict, Locked, PreconditionFailed),
    openapi_extra={"parameters": [_TUS_RESUMABLE]},
)
async def terminate_upload(
    upload_id: uuid.UUID,
    request: Request,
    user: Writer,
    settings: SettingsDep,
    storage: StorageDep,
    sessionmaker: SessionmakerDep,
    session: SessionDep,
) -> Response:
    _require_tus(request)
    file = await resumable.find_upload(session, upload_id, user.user_id, user.is_admin)
    ctx = UploadContext(sessionmaker, storage, settings)
    await resumable.terminate(ctx, _cache(request), file)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
