"""``POST /services/{id}/sync-panels``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayTimeout,
    NotFound,
    problem_responses,
)
from service_registry.dependencies import SettingsDep, Writer
from service_registry.panels.sync import SyncReport, SyncRequest, sync
from service_registry.services import service as services

router = APIRouter(tags=["reference panels"])


@router.post(
    "/services/{id_or_slug}/sync-panels",
    summary="Read what the service offers: Cloudgene panels, or WES capabilities and panels",
    responses=problem_responses(BadRequest, NotFound, Forbidden, BadGateway, GatewayTimeout),
)
async def sync_panels(
    id_or_slug: str,
    request: Request,
    session: SessionDep,
    user: Writer,
    settings: SettingsDep,
    body: SyncRequest | None = None,
) -> SyncReport:
    found = await services.find(session, id_or_slug)
    token = body.cloudgene_token.get_secret_value() if body and body.cloudgene_token else None
    return await sync(session, request.state.probe_http, found, settings, token)
