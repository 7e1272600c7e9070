"""Every query on fleet checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring_service.models import FleetCheck, FleetStatus


async def latest(session: AsyncSession) -> Sequence[FleetCheck]:
    """The newest check of each service."""
    stmt = (
        select(FleetCheck)
        .ext(distinct_on(FleetCheck.service))
        .order_by(FleetCheck.service, FleetCheck.checked_at.desc())
    )
    return (await session.scalars(stmt)).all()


async def up_counts_since(session: AsyncSession, since: datetime) -> dict[str, tuple[int, int]]:
    """Per service: (checks, checks that found it up) since ``since``."""
    up = func.count().filter(FleetCheck.status == FleetStatus.UP)
    stmt = (
        select(FleetCheck.service, func.count(), up)
        .where(FleetCheck.checked_at >= since)
        .group_by(FleetCheck.service)
    )
    return {row[0]: (row[1], row[2]) for row in await session.execute(stmt)}


async def recent_statuses(session: AsyncSession, service: str, count: int) -> list[FleetStatus]:
    """The last ``count`` statuses of ``service``, newest first."""
    stmt = (
        select(FleetCheck.status)
        .where(FleetCheck.service == service)
        .order_by(FleetCheck.checked_at.desc())
        .limit(count)
    )
    return list((await session.scalars(stmt)).all())


def history(service: str, since: datetime | None, until: datetime | None) -> Select[Any]:
    stmt = select(FleetCheck).where(FleetCheck.service == service)
    if since is not None:
        stmt = stmt.where(FleetCheck.checked_at >= since)
    if until is not None:
        stmt = stmt.where(FleetCheck.checked_at < until)
    return stmt


async def prune_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(delete(FleetCheck).where(FleetCheck.checked_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
