"""HTTP routes of the services API. Thin: parse, authorize, call service.py, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from fedimpute_shared.auth import Principal, require_services
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    problem_responses,
)
from service_registry.dependencies import Reader, RenderedDep, SettingsDep, Writer, can_manage
from service_registry.models import ImputationService
from service_registry.panels import repository as panels
from service_registry.panels.schemas import PanelOut
from service_registry.services import listing, repository, service
from service_registry.services.schemas import (
    Location,
    ServiceCreate,
    ServiceDetail,
    ServiceFilters,
    ServiceOut,
    ServiceUpdate,
)

router = APIRouter(prefix="/services", tags=["services"])
internal_router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)
JobProcessor = Annotated[Principal, Depends(require_services("job-processor"))]


@router.get("", summary="List imputation services", response_model=Page[ServiceOut])
async def list_services(
    session: ReadSessionDep,
    user: Reader,
    rendered: RenderedDep,
    codec: CodecDep,
    filters: Annotated[ServiceFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Response:
    if filters.include_deleted and not can_manage(user):
        raise Forbidden(
            "include_deleted is for admin and service_admin, with a services:write token"
        )
    # Already JSON (each service rendered once per row version, see listing.py).
    body = await listing.page_json(session, filters, params, codec, rendered)
    return Response(body, media_type="application/json")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an imputation service",
    responses=problem_responses(Conflict, Unprocessable, Forbidden),
)
async def create_service(
    body: ServiceCreate, session: SessionDep, user: Writer, settings: SettingsDep
) -> ServiceOut:
    created = await service.create(session, body, settings)
    return service.to_out(created, settings)


@router.get(
    "/{id_or_slug}",
    summary="Get a service by id or slug",
    responses=problem_responses(NotFound),
    response_model=ServiceOut,
)
async def get_service(
    id_or_slug: str,
    session: ReadSessionDep,
    user: Reader,
    rendered: RenderedDep,
    include_deleted: bool = False,
) -> Response:
    can_see_deleted = include_deleted and can_manage(user)
    # Already JSON (rendered once per row version, see listing.py).
    body = await listing.one_json(session, id_or_slug, can_see_deleted, rendered)
    return Response(body, media_type="application/json")


@router.patch(
    "/{id_or_slug}",
    summary="Change a service",
    responses=problem_responses(NotFound, Unprocessable, Forbidden),
)
async def update_service(
    id_or_slug: str, body: ServiceUpdate, session: SessionDep, user: Writer, settings: SettingsDep
) -> ServiceOut:
    found = await service.find(session, id_or_slug)
    return service.to_out(await service.update(session, found, body, settings), settings)


@router.put(
    "/{id_or_slug}/location",
    summary="Set where a service runs",
    responses=problem_responses(NotFound, Forbidden),
)
async def update_location(
    id_or_slug: str, body: Location, session: SessionDep, user: Writer, settings: SettingsDep
) -> ServiceOut:
    found = await service.find(session, id_or_slug)
    return service.to_out(await service.set_location(session, found, body), settings)


@router.delete(
    "/{id_or_slug}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a service (soft by default; hard=true for admins)",
    responses=problem_responses(NotFound, Forbidden),
)
async def delete_service(
    id_or_slug: str, session: SessionDep, user: Writer, hard: bool = False
) -> Response:
    if hard and not user.is_admin:
        raise Forbidden("hard deletion is for admin only")
    found = await service.find(session, id_or_slug, include_deleted=hard)
    if hard:
        await service.hard_delete(session, found)
    else:
        await service.soft_delete(session, found)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{id_or_slug}/restore",
    summary="Undo a soft deletion",
    responses=problem_responses(NotFound, Forbidden),
)
async def restore_service(
    id_or_slug: str, session: SessionDep, user: Writer, settings: SettingsDep
) -> ServiceOut:
    found = await service.find(session, id_or_slug, include_deleted=True)
    return service.to_out(await service.restore(session, found), settings)


@internal_router.get("/services")
async def internal_active_services(
    session: SessionDep, caller: JobProcessor, settings: SettingsDep
) -> list[ServiceDetail]:
    """For job-processor's pre-flight across every active service: each with its panels."""
    stmt = repository.listing(ServiceFilters(is_active=True)).order_by(ImputationService.name)
    found = list((await session.scalars(stmt.limit(500))).all())
    out: list[ServiceDetail] = []
    for row in found:
        rows = await panels.for_service(session, row.id)
        base = service.to_out(row, settings)
        out.append(
            ServiceDetail(**base.model_dump(), panels=[PanelOut.model_validate(p) for p in rows])
        )
    return out


@internal_router.get("/services/{id_or_slug}")
async def internal_service(
    id_or_slug: str, session: SessionDep, caller: JobProcessor, settings: SettingsDep
) -> ServiceDetail:
    """For job-processor (its service token only): everything needed to submit to the service."""
    found = await service.find(session, id_or_slug)
    rows = await panels.for_service(session, found.id)
    out = service.to_out(found, settings)
    return ServiceDetail(**out.model_dump(), panels=[PanelOut.model_validate(p) for p in rows])
