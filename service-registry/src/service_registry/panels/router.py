"""HTTP routes of the reference-panels API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import Conflict, Forbidden, NotFound, problem_responses
from service_registry.dependencies import Reader, Writer
from service_registry.models import ReferencePanel
from service_registry.panels import repository, service
from service_registry.panels.schemas import PanelCreate, PanelFilters, PanelOut, PanelUpdate

router = APIRouter(prefix="/reference-panels", tags=["reference panels"])


@router.get("", summary="List reference panels")
async def list_panels(
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    filters: Annotated[PanelFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[PanelOut]:
    rows, cursor = await paginate(
        session,
        repository.listing(filters),
        order_by=[ReferencePanel.display_name, ReferencePanel.id],
        params=params,
        codec=codec,
    )
    return Page(items=[PanelOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a reference panel to a service",
    responses=problem_responses(NotFound, Conflict, Forbidden),
)
async def create_panel(body: PanelCreate, session: SessionDep, user: Writer) -> PanelOut:
    return PanelOut.model_validate(await service.create(session, body))


@router.get("/{panel_id}", summary="Get a reference panel", responses=problem_responses(NotFound))
async def get_panel(panel_id: uuid.UUID, session: SessionDep, user: Reader) -> PanelOut:
    return PanelOut.model_validate(await service.find(session, panel_id))


@router.patch(
    "/{panel_id}",
    summary="Change a reference panel",
    responses=problem_responses(NotFound, Forbidden),
)
async def update_panel(
    panel_id: uuid.UUID, body: PanelUpdate, session: SessionDep, user: Writer
) -> PanelOut:
    panel = await service.find(session, panel_id)
    return PanelOut.model_validate(await service.update(session, panel, body))


@router.delete(
    "/{panel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a reference panel",
    responses=problem_responses(NotFound, Forbidden),
)
async def delete_panel(panel_id: uuid.UUID, session: SessionDep, user: Writer) -> Response:
    await service.delete(session, await service.find(session, panel_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
