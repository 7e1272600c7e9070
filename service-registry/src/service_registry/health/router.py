"""HTTP routes of health: current status (cached per the 15 min / 1 min / 10 s rule), check now,
sweep now, history and uptime; and the internal read for other services."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import AwareDatetime

from fedimpute_shared.auth import Principal, ServiceCaller, require_services
from fedimpute_shared.db import SessionDep
from fedimpute_shared.deps import TasksDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import BadRequest, Forbidden, NotFound, problem_responses
from service_registry.dependencies import Reader, SettingsDep, Writer
from service_registry.health import repository
from service_registry.health import service as health
from service_registry.health.schemas import (
    HealthCheckOut,
    HealthReport,
    ServiceHealthSummary,
    SweepAccepted,
    Uptime,
)
from service_registry.health.worker import HealthWorker
from service_registry.models import ServiceHealthCheck
from service_registry.services import service as services

router = APIRouter(tags=["health"])
internal_router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


async def _checker(request: Request) -> health.OnDemandChecker:
    checker: health.OnDemandChecker = request.state.health_checker
    return checker


async def _worker(request: Request) -> HealthWorker:
    worker: HealthWorker = request.state.health_worker
    return worker


Checker = Annotated[health.OnDemandChecker, Depends(_checker)]
Monitoring = Annotated[Principal, Depends(require_services("monitoring"))]
Worker = Annotated[HealthWorker, Depends(_worker)]


@router.get(
    "/services/{id_or_slug}/health",
    summary="Current health (re-checked when stale: 15 min healthy, 1 min unhealthy)",
    responses=problem_responses(NotFound),
)
async def get_health(
    id_or_slug: str,
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    checker: Checker,
) -> HealthReport:
    found = await services.find(session, id_or_slug)
    return await health.current_health(session, checker, found, settings, system=False)


@router.post(
    "/services/{id_or_slug}/health/check",
    summary="Check a service now",
    responses=problem_responses(NotFound, Forbidden),
)
async def check_health_now(
    id_or_slug: str,
    session: SessionDep,
    user: Writer,
    settings: SettingsDep,
    checker: Checker,
) -> HealthReport:
    found = await services.find(session, id_or_slug)
    return await health.current_health(session, checker, found, settings, system=False, force=True)


@router.post(
    "/services/health-sweeps",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Sweep every active service now (in the background)",
    responses=problem_responses(Forbidden),
)
async def sweep_now(user: Writer, worker: Worker, tasks: TasksDep) -> SweepAccepted:
    if worker.sweeping:
        return SweepAccepted(accepted=False, already_running=True)
    tasks.spawn("health-sweep-on-demand", worker.sweep_once())
    return SweepAccepted(accepted=True, already_running=False)


@router.get(
    "/services/{id_or_slug}/health/history",
    summary="Health checks of a service, newest first",
    responses=problem_responses(NotFound, BadRequest),
)
async def health_history(
    id_or_slug: str,
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
    since: Annotated[
        AwareDatetime | None, Query(description="Inclusive lower bound (ISO 8601)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Exclusive upper bound (ISO 8601)")
    ] = None,
) -> Page[HealthCheckOut]:
    if since and until and since >= until:
        raise BadRequest("since must be before until")
    found = await services.find(session, id_or_slug)
    rows, cursor = await paginate(
        session,
        repository.history(found.id, since, until),
        order_by=[ServiceHealthCheck.checked_at, ServiceHealthCheck.id],
        params=params,
        codec=codec,
        descending=True,
    )
    return Page(items=[HealthCheckOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/services/{id_or_slug}/uptime",
    summary="Uptime over 24 h, 7 d and 30 d",
    responses=problem_responses(NotFound),
)
async def get_uptime(id_or_slug: str, session: SessionDep, user: Reader) -> Uptime:
    found = await services.find(session, id_or_slug)
    return await health.uptime(session, found.id)


@internal_router.get("/services/{id_or_slug}/health")
async def internal_health(
    id_or_slug: str,
    session: SessionDep,
    caller: ServiceCaller,
    settings: SettingsDep,
    checker: Checker,
) -> HealthReport:
    """For other services (job-processor before submitting): unhealthy results are re-checked
    after 10 s instead of 1 min."""
    found = await services.find(session, id_or_slug)
    return await health.current_health(session, checker, found, settings, system=True)


@internal_router.get("/service-health")
async def internal_health_summary(
    session: SessionDep, caller: Monitoring
) -> list[ServiceHealthSummary]:
    """For monitoring (its service token only): every service not deleted, with its last known
    health and uptime, as stored (nothing is probed: monitoring asks often)."""
    return await health.summaries(session)
