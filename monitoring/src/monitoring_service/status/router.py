"""``GET /status``: the public status page (no login; the gateway routes /api/status/** open).

Anyone may ask, as often as the gateway's rate limit allows, and the page counts 30 days of
checks: each replica builds it at most once every ``STATUS_CACHE_SECONDS`` and serves that copy.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from fedimpute_shared.db import SessionDep
from monitoring_service.dependencies import SettingsDep
from monitoring_service.status.schemas import StatusPage
from monitoring_service.status.service import status_page

router = APIRouter(tags=["status"])


@router.get("/status", summary="Public status: the platform and each external service")
async def get_status(session: SessionDep, settings: SettingsDep, request: Request) -> StatusPage:
    cache: dict[str, tuple[float, StatusPage]] = request.state.status_cache
    cached = cache.get("page")
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    page = await status_page(session, settings.watched_services, settings.status_incident_days)
    cache["page"] = (time.monotonic() + settings.status_cache_seconds, page)
    return page
