"""Alert routes (admins): list, read, acknowledge; the configured rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import Conflict, NotFound, problem_responses
from monitoring_service.alerts import service as alerts
from monitoring_service.alerts.rules import AlertRule
from monitoring_service.alerts.schemas import AlertOut
from monitoring_service.dependencies import Admin, SettingsDep
from monitoring_service.models import Alert, AlertState

router = APIRouter(prefix="/monitoring", tags=["alerts"])


async def _alert(session: SessionDep, alert_id: uuid.UUID) -> Alert:
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound("no such alert")
    return alert


@router.get("/alerts", summary="Alerts, newest first (filter by state)")
async def list_alerts(
    session: ReadSessionDep,
    admin: Admin,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
    state: AlertState | None = None,
) -> Page[AlertOut]:
    rows, cursor = await paginate(
        session,
        alerts.listing(state),
        order_by=[Alert.started_at, Alert.id],
        params=page,
        codec=codec,
        descending=True,
    )
    return Page(items=[AlertOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/alerts/{alert_id}", summary="One alert", responses=problem_responses(NotFound))
async def get_alert(alert_id: uuid.UUID, session: ReadSessionDep, admin: Admin) -> AlertOut:
    return AlertOut.model_validate(await _alert(session, alert_id))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert: someone is on it (it resolves when its condition clears)",
    responses=problem_responses(NotFound, Conflict),
)
async def acknowledge_alert(alert_id: uuid.UUID, session: SessionDep, admin: Admin) -> AlertOut:
    alert = await _alert(session, alert_id)
    if alert.state is AlertState.RESOLVED:
        raise Conflict("this alert is resolved already")
    return AlertOut.model_validate(await alerts.acknowledge(session, alert, admin.user_id))


@router.get("/alert-rules", summary="The configured rules (ALERT_RULES)")
async def list_rules(admin: Admin, settings: SettingsDep) -> list[AlertRule]:
    return list(settings.alert_rules)
