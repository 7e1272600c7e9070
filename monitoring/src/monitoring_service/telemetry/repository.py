"""Every query on metric samples."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring_service.models import MetricSample


async def latest(session: AsyncSession, since: datetime) -> Sequence[MetricSample]:
    """The newest sample of every (source, series) seen since ``since``."""
    stmt = (
        select(MetricSample)
        .ext(distinct_on(MetricSample.source, MetricSample.name))
        .where(MetricSample.at >= since)
        .order_by(MetricSample.source, MetricSample.name, MetricSample.at.desc())
    )
    return (await session.scalars(stmt)).all()


async def series(
    session: AsyncSession, source: str, name: str, since: datetime, limit: int
) -> Sequence[MetricSample]:
    """One series since ``since``, oldest first, at most the newest ``limit`` points."""
    newest = (
        select(MetricSample)
        .where(MetricSample.source == source, MetricSample.name == name, MetricSample.at >= since)
        .order_by(MetricSample.at.desc())
        .limit(limit)
        .subquery()
    )
    rows = await session.execute(select(newest).order_by(newest.c.at))
    return [MetricSample(source=r.source, name=r.name, value=r.value, at=r.at) for r in rows]
