"""HTTP routes of the files API: list, metadata, content, index, links, deletion; and the
internal reads job-processor makes on a user's behalf (``internal_router``).

``GET /files/download/{token}`` is public (no bearer token: the signed token is the credential);
the gateway must route it without authentication. ``/internal/...`` takes only service tokens
and is never routed by the gateway: job-processor names the user (``user_id``) and may read only
that user's files.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    problem_responses,
)
from file_manager.dependencies import (
    JobProcessor,
    MetricsDep,
    OnBehalfOf,
    Reader,
    SettingsDep,
    StorageDep,
    Writer,
    public_base,
)
from file_manager.files import access, repository, service
from file_manager.files.schemas import (
    FileFilters,
    FileOut,
    LinkCreate,
    LinkCreated,
    LinkOut,
    UsageOut,
)
from file_manager.models import AccessAction, StoredFile

# A download answers with the file's own media type (application/gzip for a .vcf.gz,
# text/plain for a log...), a 206 for a Range, a 304 for a matching If-None-Match.
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes, with its own media type", "content": _BYTES},
    206: {"description": "The requested range (Range: bytes=...)", "content": _BYTES},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
}
_INDEX: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The tabix index (.tbi)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    206: _DOWNLOAD[206],
    304: _DOWNLOAD[304],
}

router = APIRouter(prefix="/files", tags=["files"])


@router.get("", summary="List my files (admins: anyone's with owner_id)")
async def list_files(
    session: ReadSessionDep,
    user: Reader,
    codec: CodecDep,
    filters: Annotated[FileFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[FileOut]:
    owner: uuid.UUID | None = user.user_id
    if filters.owner_id is not None:
        if not user.is_admin:
            raise Forbidden("owner_id is for admins")
        owner = filters.owner_id
    rows, cursor = await paginate(
        session,
        repository.listing(owner, filters),
        order_by=[StoredFile.created_at, StoredFile.id],
        params=params,
        codec=codec,
    )
    return Page(items=[service.to_out(f) for f in rows], next_cursor=cursor)


@router.get("/usage", summary="My storage use, quota and size limit")
async def usage(session: ReadSessionDep, user: Reader, settings: SettingsDep) -> UsageOut:
    return UsageOut(
        used_bytes=await repository.usage_bytes(session, user.user_id),
        quota_bytes=settings.user_quota_bytes,
        max_file_size_bytes=settings.max_file_size_bytes,
    )


@router.head("/download/{token}", include_in_schema=False)
@router.get(
    "/download/{token}",
    summary="Download through a signed link (public: no bearer token)",
    response_class=Response,
    responses=_DOWNLOAD | problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def download_with_link(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    metrics: MetricsDep,
) -> Response:
    head = request.method == "HEAD"
    link, file = await service.resolve_link(session, settings, token, consume=not head)
    reader = service.ContentReader("link", f"link:{link.id}", AccessAction.LINK_DOWNLOAD)
    return await service.serve_content(session, storage, file, request, metrics, reader)


@router.get(
    "/{file_id}",
    summary="A file's metadata and validation report",
    responses=problem_responses(NotFound),
)
async def get_file(file_id: uuid.UUID, session: SessionDep, user: Reader) -> FileOut:
    return service.to_out(await service.find_owned(session, file_id, user))


@router.delete(
    "/{file_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a file (its bytes, index and links)",
    responses=problem_responses(NotFound),
)
async def delete_file(
    file_id: uuid.UUID, request: Request, session: SessionDep, user: Writer, storage: StorageDep
) -> Response:
    file = await service.find_owned(session, file_id, user)
    await service.delete_file(session, storage, file, access.actor_of(user), request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.head("/{file_id}/content", include_in_schema=False)
@router.get(
    "/{file_id}/content",
    summary="Download a file (streaming; Range requests answer 206)",
    response_class=Response,
    responses=_DOWNLOAD | problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def download(
    file_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: Reader,
    storage: StorageDep,
    metrics: MetricsDep,
) -> Response:
    file = await service.find_owned(session, file_id, user, include_uploading=False)
    reader = service.ContentReader("owner", access.actor_of(user), AccessAction.DOWNLOAD)
    return await service.serve_content(session, storage, file, request, metrics, reader)


@router.get(
    "/{file_id}/index",
    summary="Download the tabix index (.tbi) built during validation",
    response_class=Response,
    responses=_INDEX | problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def download_index(
    file_id: uuid.UUID, request: Request, session: SessionDep, user: Reader, storage: StorageDep
) -> Response:
    file = await service.find_owned(session, file_id, user, include_uploading=False)
    response = await service.stream_download(storage, service.index_download(file), request)
    access.record(
        session, file, access.actor_of(user), AccessAction.DOWNLOAD, request=request, detail="index"
    )
    return response


@router.post(
    "/{file_id}/links",
    status_code=status.HTTP_201_CREATED,
    summary="Create a signed download link (usable without a token until it expires)",
    responses=problem_responses(NotFound, Gone, Conflict),
)
async def create_link(
    file_id: uuid.UUID,
    body: LinkCreate,
    request: Request,
    session: SessionDep,
    user: Writer,
    settings: SettingsDep,
) -> LinkCreated:
    file = await service.find_owned(session, file_id, user, include_uploading=False)
    base = public_base(request, settings)
    return await service.create_link(session, file, body, user, settings, base, request)


@router.get(
    "/{file_id}/links",
    summary="The download links of a file",
    responses=problem_responses(NotFound),
)
async def list_links(file_id: uuid.UUID, session: SessionDep, user: Reader) -> list[LinkOut]:
    file = await service.find_owned(session, file_id, user)
    return [service.link_out(link) for link in await repository.links_of(session, file.id)]


@router.delete(
    "/{file_id}/links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a download link",
    responses=problem_responses(NotFound),
)
async def revoke_link(
    file_id: uuid.UUID, link_id: uuid.UUID, request: Request, session: SessionDep, user: Writer
) -> Response:
    file = await service.find_owned(session, file_id, user)
    await service.revoke_link(session, file, link_id, user, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ internal (job-processor)

internal_router = APIRouter(prefix="/internal/files", tags=["internal"])


@internal_router.get(
    "/{file_id}", summary="A user's file metadata", responses=problem_responses(NotFound)
)
async def internal_get_file(
    file_id: uuid.UUID, user_id: OnBehalfOf, session: SessionDep, caller: JobProcessor
) -> FileOut:
    return service.to_out(await service.find_for_user(session, file_id, user_id))


@internal_router.head("/{file_id}/content", include_in_schema=False)
@internal_router.get(
    "/{file_id}/content",
    summary="Read a user's file (streaming, Range supported)",
    response_class=Response,
    responses=_DOWNLOAD | problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def internal_read_content(
    file_id: uuid.UUID,
    user_id: OnBehalfOf,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    metrics: MetricsDep,
    caller: JobProcessor,
) -> Response:
    file = await service.find_for_user(session, file_id, user_id)
    reader = service.ContentReader(
        "service", access.actor_of(caller), AccessAction.DOWNLOAD, on_behalf_of=user_id
    )
    return await service.serve_content(session, storage, file, request, metrics, reader)


@internal_router.post(
    "/{file_id}/links",
    status_code=status.HTTP_201_CREATED,
    summary="A signed download link of a user's file, for a remote node to fetch an input",
    responses=problem_responses(NotFound, Gone, Conflict),
)
async def internal_create_link(
    file_id: uuid.UUID,
    user_id: OnBehalfOf,
    body: LinkCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: JobProcessor,
) -> LinkCreated:
    """For job-processor submitting to a WES node that fetches its inputs by URL: the link is
    the owner's (recorded in the file's access log like one they made), under the usual limits;
    the caller builds the absolute URL from the token."""
    file = await service.find_for_user(session, file_id, user_id)
    owner = Principal(subject=str(user_id), token_type="access")
    return await service.create_link(
        session, file, body, owner, settings, settings.public_base_path, request
    )


@internal_router.get(
    "/{file_id}/index",
    summary="A user's file's tabix index",
    response_class=Response,
    responses=_INDEX | problem_responses(NotFound, Gone, RangeNotSatisfiable),
)
async def internal_read_index(
    file_id: uuid.UUID,
    user_id: OnBehalfOf,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    caller: JobProcessor,
) -> Response:
    file = await service.find_for_user(session, file_id, user_id)
    return await service.stream_download(storage, service.index_download(file), request)
