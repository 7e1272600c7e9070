"""Every query on imputation services."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from service_registry.models import ImputationService
from service_registry.services.schemas import ServiceFilters


def listing(filters: ServiceFilters) -> Select[Any]:
    stmt = select(ImputationService)
    if not filters.include_deleted:
        stmt = stmt.where(ImputationService.deleted_at.is_(None))
    if filters.kind is not None:
        stmt = stmt.where(ImputationService.kind == filters.kind)
    if filters.is_active is not None:
        stmt = stmt.where(ImputationService.is_active.is_(filters.is_active))
    if filters.health_status is not None:
        stmt = stmt.where(ImputationService.health_status == filters.health_status)
    if filters.build is not None:
        stmt = stmt.where(ImputationService.supported_builds.contains([filters.build]))
    if filters.country is not None:
        stmt = stmt.where(ImputationService.country == filters.country.upper())
    return stmt


async def get(session: AsyncSession, service_id: uuid.UUID) -> ImputationService | None:
    return await session.get(ImputationService, service_id)


async def get_by_slug(session: AsyncSession, slug: str) -> ImputationService | None:
    result = await session.scalars(select(ImputationService).where(ImputationService.slug == slug))
    return result.one_or_none()


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return await get_by_slug(session, slug) is not None


async def active_services(session: AsyncSession) -> list[ImputationService]:
    """Services the health worker sweeps: active and not deleted."""
    result = await session.scalars(
        select(ImputationService)
        .where(ImputationService.is_active.is_(True), ImputationService.deleted_at.is_(None))
        .order_by(ImputationService.id)
    )
    return list(result.all())
