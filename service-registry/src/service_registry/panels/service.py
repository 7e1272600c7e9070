"""Logic of the reference-panels API."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.problems import Conflict, NotFound
from service_registry.models import ReferencePanel
from service_registry.panels import repository
from service_registry.panels.schemas import PanelCreate, PanelUpdate
from service_registry.services import repository as services


async def find(session: AsyncSession, panel_id: uuid.UUID) -> ReferencePanel:
    panel = await repository.get(session, panel_id)
    if panel is None:
        raise NotFound(f"no reference panel {panel_id}")
    service = await services.get(session, panel.service_id)
    if service is None or service.deleted_at is not None:
        raise NotFound(f"no reference panel {panel_id}")
    return panel


async def create(session: AsyncSession, body: PanelCreate) -> ReferencePanel:
    if not await services.is_live(session, body.service_id):
        raise NotFound(f"no imputation service {body.service_id}: a panel must belong to one")
    panel = ReferencePanel(**body.model_dump())
    session.add(panel)
    try:
        await session.flush()
    except IntegrityError:
        # The unique (service, slug) constraint decides (no query asking first: one round
        # trip fewer per create, and two concurrent creates cannot both pass it).
        raise Conflict(f"this service already has a panel {body.slug!r}", slug=body.slug) from None
    return panel


async def update(session: AsyncSession, panel: ReferencePanel, body: PanelUpdate) -> ReferencePanel:
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(panel, field, value)
    await session.flush()
    return panel


async def delete(session: AsyncSession, panel: ReferencePanel) -> None:
    await session.delete(panel)
    await session.flush()
