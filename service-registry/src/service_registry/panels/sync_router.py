"""``POST /services/{id}/sync-panels``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import (
    BadGateway,
    Forbidden,
    GatewayTimeout,
    NotFound,
    problem_responses,
)
from service_registry.dependencies import SettingsDep, Writer
from service_registry.panels.sync import SyncReport, sync
from service_registry.services import service as services

router = APIRouter(tags=["reference panels"])


@router.post(
    "/services/{id_or_slug}/sync-panels",
    summary="Fetch the service's real panel list and upsert it",
    responses=problem_responses(NotFound, Forbidden, BadGateway, GatewayTimeout),
)
async def sync_panels(
    id_or_slug: str, request: Request, session: SessionDep, user: Writer, settings: SettingsDep
) -> SyncReport:
    found = await services.find(session, id_or_slug)
    return await sync(session, request.state.probe_http, found, settings)
