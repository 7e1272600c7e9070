"""``GET /status``: the public status page (no login; the gateway routes /api/status/** open)."""

from __future__ import annotations

from fastapi import APIRouter

from fedimpute_shared.db import SessionDep
from monitoring_service.dependencies import SettingsDep
from monitoring_service.status.schemas import StatusPage
from monitoring_service.status.service import status_page

router = APIRouter(tags=["status"])


@router.get("/status", summary="Public status: the platform and each external service")
async def get_status(session: SessionDep, settings: SettingsDep) -> StatusPage:
    return await status_page(session, settings.watched_services, settings.status_incident_days)
