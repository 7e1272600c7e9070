"""Internal endpoints for job-processor (service token, never routed by the gateway).

job-processor acts on a user's behalf: it names the user (``user_id``) and may read only that
user's files, and store result/report/log files for that user's job. Results are not refused for
quota (the job already ran) but count towards it; the size limit still applies.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from fedimpute_shared.auth import Principal, require_services
from fedimpute_shared.body_limit import streams_body
from fedimpute_shared.db import SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.problems import (
    BadRequest,
    Gone,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    problem_responses,
)
from file_manager.dependencies import SettingsDep, StorageDep
from file_manager.files import access, service
from file_manager.files.schemas import FileOut
from file_manager.models import AccessAction, FileKind
from file_manager.uploads.service import SimpleUpload, UploadContext, UploadRequest

router = APIRouter(prefix="/internal/files", tags=["internal"])
JobProcessor = Annotated[Principal, Depends(require_services("job-processor"))]
UserId = Annotated[uuid.UUID, Query(description="The user on whose behalf the call is made.")]


@router.get("/{file_id}", summary="A user's file metadata", responses=problem_responses(NotFound))
async def get_file(
    file_id: uuid.UUID, user_id: UserId, session: SessionDep, caller: JobProcessor
) -> FileOut:
    return service.to_out(await service.find_for_user(session, file_id, user_id))


@router.head("/{file_id}/content", include_in_schema=False)
@router.get(
    "/{file_id}/content",
    summary="Read a user's file (streaming, Range supported)",
    responses=problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def read_content(
    file_id: uuid.UUID,
    user_id: UserId,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    caller: JobProcessor,
) -> Response:
    file = await service.find_for_user(session, file_id, user_id)
    head = request.method == "HEAD"
    response = await service.stream_download(
        storage, service.content_download(file), request, head=head
    )
    if not head:
        access.record(
            session,
            file,
            access.actor_of(caller),
            AccessAction.DOWNLOAD,
            request=request,
            size=int(response.headers.get("content-length", 0)),
            on_behalf_of=user_id,
        )
    return response


@router.get("/{file_id}/index", summary="A user's file's tabix index")
async def read_index(
    file_id: uuid.UUID,
    user_id: UserId,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    caller: JobProcessor,
) -> Response:
    file = await service.find_for_user(session, file_id, user_id)
    return await service.stream_download(storage, service.index_download(file), request)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Store a result (or report/log) file of a user's job; raw body",
    responses=problem_responses(PayloadTooLarge, BadRequest),
)
@streams_body
async def store_result(
    request: Request,
    user_id: UserId,
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
        actor=access.actor_of(caller),
        filename=filename,
        kind=kind,
        job_id=job_id,
        expected_sha256=sha256,
        content_length=int(length) if length and length.isdigit() else None,
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
    return JSONResponse(service.to_out(file).model_dump(mode="json"), status_code=201)
