"""The query of discovery: every service that may be ranked, with its panels."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from service_registry.models import ImputationService, ServiceKind


async def candidates(session: AsyncSession, kind: ServiceKind | None) -> list[ImputationService]:
    """Services not deleted (inactive ones too: they are listed as excluded, with why)."""
    stmt = (
        select(ImputationService)
        .where(ImputationService.deleted_at.is_(None))
        .options(selectinload(ImputationService.panels))
    )
    if kind is not None:
        stmt = stmt.where(ImputationService.kind == kind)
    return list((await session.scalars(stmt)).all())
