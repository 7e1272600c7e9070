"""Every query on health checks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service_registry.models import HealthStatus, ServiceHealthCheck

UP_STATUSES = (HealthStatus.HEALTHY, HealthStatus.DEGRADED)


def history(service_id: uuid.UUID, since: datetime | None, until: datetime | None) -> Select[Any]:
    stmt = select(ServiceHealthCheck).where(ServiceHealthCheck.service_id == service_id)
    if since is not None:
        stmt = stmt.where(ServiceHealthCheck.checked_at >= since)
    if until is not None:
        stmt = stmt.where(ServiceHealthCheck.checked_at < until)
    return stmt


async def counts_since(
    session: AsyncSession, service_id: uuid.UUID, since: datetime
) -> tuple[int, int]:
    """(all checks, checks that found the service up) since ``since``."""
    up = func.count(case((ServiceHealthCheck.status.in_(UP_STATUSES), 1)))
    row = (
        await session.execute(
            select(func.count(), up).where(
                ServiceHealthCheck.service_id == service_id, ServiceHealthCheck.checked_at >= since
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def prune_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(ServiceHealthCheck).where(ServiceHealthCheck.checked_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
