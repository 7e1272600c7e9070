"""Every query on reference panels."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service_registry.models import ImputationService, ReferencePanel
from service_registry.panels.schemas import PanelFilters


def listing(filters: PanelFilters) -> Select[Any]:
    stmt = (
        select(ReferencePanel)
        .join(ImputationService, ReferencePanel.service_id == ImputationService.id)
        .where(ImputationService.deleted_at.is_(None))
    )
    if filters.service_id is not None:
        stmt = stmt.where(ReferencePanel.service_id == filters.service_id)
    if filters.build is not None:
        stmt = stmt.where(ReferencePanel.build == filters.build)
    if filters.population is not None:
        # Populations are matched case-insensitively, as Cloudgene does.
        stmt = stmt.where(has_population(filters.population))
    if filters.is_available is not None:
        stmt = stmt.where(ReferencePanel.is_available.is_(filters.is_available))
    return stmt


def has_population(population: str) -> ColumnElement[bool]:
    """The panel declares ``population`` (case-insensitive, as Cloudgene matches it)."""
    member = func.unnest(ReferencePanel.populations).column_valued("population")
    return exists(select(1).where(func.lower(member) == population.lower()))


async def get(session: AsyncSession, panel_id: uuid.UUID) -> ReferencePanel | None:
    return await session.get(ReferencePanel, panel_id)


async def for_service(session: AsyncSession, service_id: uuid.UUID) -> list[ReferencePanel]:
    result = await session.scalars(
        select(ReferencePanel)
        .where(ReferencePanel.service_id == service_id)
        .order_by(ReferencePanel.slug)
    )
    return list(result.all())
