"""Every query on health checks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service_registry.models import HealthStatus, ImputationService, ServiceHealthCheck

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


async def not_deleted(session: AsyncSession) -> Sequence[ImputationService]:
    stmt = (
        select(ImputationService)
        .where(ImputationService.deleted_at.is_(None))
        .order_by(ImputationService.name)
    )
    return (await session.scalars(stmt)).all()


async def prune_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(ServiceHealthCheck).where(ServiceHealthCheck.checked_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def lock_health_states(session: AsyncSession, service_ids: list[uuid.UUID]) -> Sequence[Any]:
    """The current health state of ``service_ids``, row-locked until the transaction ends.

    Locked in id order, so two batches recording overlapping services never deadlock; the lock
    keeps a sweep and an on-demand check of one service from losing each other's update.
    """
    result = await session.execute(
        select(
            ImputationService.id,
            ImputationService.slug,
            ImputationService.health_status,
            ImputationService.consecutive_failures,
            ImputationService.first_unhealthy_at,
            ImputationService.is_active,
            ImputationService.api_url,
        )
        .where(ImputationService.id.in_(service_ids))
        .order_by(ImputationService.id)
        .with_for_update()
    )
    return result.all()


async def store_checks(
    session: AsyncSession, checks: list[dict[str, Any]], states: list[dict[str, Any]]
) -> None:
    """One multi-row INSERT of the checks and one executemany UPDATE of the services' state."""
    if checks:
        await session.execute(insert(ServiceHealthCheck), checks)
        await session.execute(update(ImputationService), states)
