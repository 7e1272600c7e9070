"""External services for operators: each one's status, uptime and incidents; a sync on demand."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import ServiceUnavailable, problem_responses
from monitoring_service.dependencies import Admin, SettingsDep
from monitoring_service.external import service as external
from monitoring_service.external.schemas import ExternalOverview, ExternalServiceOut, IncidentOut
from monitoring_service.external.sync import RegistrySync, RegistryUnavailable

router = APIRouter(prefix="/monitoring/external", tags=["external services"])


def incident_out(incident: external.Incident) -> IncidentOut:
    return IncidentOut(
        service_id=incident.service_id,
        slug=incident.slug,
        status=incident.status,
        error=incident.error,
        started_at=incident.started_at,
        ended_at=incident.ended_at,
        ongoing=incident.ended_at is None,
    )


async def overview(session: SessionDep, days: int) -> ExternalOverview:
    services = await external.listing(session, active_only=False)
    return ExternalOverview(
        services=[ExternalServiceOut.model_validate(s, from_attributes=True) for s in services],
        incidents=[incident_out(i) for i in await external.incidents(session, days)],
    )


@router.get("", summary="Every external service: status, uptime, incidents")
async def get_external(
    session: SessionDep, admin: Admin, settings: SettingsDep
) -> ExternalOverview:
    return await overview(session, settings.status_incident_days)


@router.post(
    "/sync",
    summary="Sync with the registry now, then answer like GET",
    responses=problem_responses(ServiceUnavailable),
)
async def sync_now(
    session: SessionDep, admin: Admin, settings: SettingsDep, request: Request
) -> ExternalOverview:
    sync: RegistrySync = request.state.registry_sync
    try:
        await sync.sync_once()
    except RegistryUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from exc
    return await overview(session, settings.status_incident_days)
