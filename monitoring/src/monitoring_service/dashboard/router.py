"""The dashboard (any logged-in user with monitoring:read; admins see every job)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from fedimpute_shared.db import SessionDep
from monitoring_service.clients import Clients
from monitoring_service.dashboard.schemas import Dashboard
from monitoring_service.dashboard.service import build_dashboard
from monitoring_service.dependencies import Reader, SettingsDep

router = APIRouter(tags=["dashboard"])


@router.get(
    "/dashboard",
    summary="Jobs by status, 24 h throughput and success rate, external services and their "
    "queues, recent jobs (mine; everyone's for admins)",
)
async def get_dashboard(
    session: SessionDep,
    caller: Reader,
    settings: SettingsDep,
    request: Request,
    recent: Annotated[int, Query(ge=1, le=50, description="How many recent jobs")] = 10,
) -> Dashboard:
    clients: Clients = request.state.clients
    return await build_dashboard(
        session, clients.job_processor, caller, settings.watched_services, recent
    )
