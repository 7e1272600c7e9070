"""Fleet health routes (admins): overall status with per-service detail and uptime, a
service's check history, and a poll round on demand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import BadRequest, NotFound, problem_responses
from monitoring_service.dependencies import Admin, SettingsDep
from monitoring_service.fleet import repository
from monitoring_service.fleet import service as fleet
from monitoring_service.fleet.schemas import FleetCheckOut, FleetHealth
from monitoring_service.models import FleetCheck

router = APIRouter(prefix="/monitoring/health", tags=["fleet"])


async def _poller(request: Request) -> fleet.FleetPoller:
    poller: fleet.FleetPoller = request.state.fleet_poller
    return poller


Poller = Annotated[fleet.FleetPoller, Depends(_poller)]


@router.get("", summary="The fleet: overall status, each service's last check and uptime")
async def get_fleet_health(session: SessionDep, admin: Admin, settings: SettingsDep) -> FleetHealth:
    return await fleet.fleet_health(session, settings.watched_services)


@router.post("/check", summary="Probe every service now, then answer like GET")
async def check_fleet_now(
    session: SessionDep, admin: Admin, settings: SettingsDep, poller: Poller
) -> FleetHealth:
    await poller.poll_once()
    return await fleet.fleet_health(session, settings.watched_services)


@router.get(
    "/{service}/history",
    summary="A service's checks, newest first",
    responses=problem_responses(NotFound, BadRequest),
)
async def fleet_history(
    service: str,
    session: SessionDep,
    admin: Admin,
    settings: SettingsDep,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
    since: Annotated[AwareDatetime | None, Query(description="Inclusive (ISO 8601)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Exclusive (ISO 8601)")] = None,
) -> Page[FleetCheckOut]:
    if service not in settings.watched_services:
        raise NotFound(f"{service!r} is not a watched service")
    if since and until and since >= until:
        raise BadRequest("since must be before until")
    rows, cursor = await paginate(
        session,
        repository.history(service, since, until),
        order_by=[FleetCheck.checked_at, FleetCheck.id],
        params=params,
        codec=codec,
        descending=True,
    )
    return Page(items=[FleetCheckOut.model_validate(r) for r in rows], next_cursor=cursor)
