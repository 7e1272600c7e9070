"""The public status page: each external imputation service and the platform, current status,
uptime and recent incidents — what users of imputation servers ask for when one is down.
Only statuses and times are public: error texts and internal details stay in the admin views."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from monitoring_service.alerts.rules import RuleKind
from monitoring_service.external import service as external
from monitoring_service.fleet.service import ESSENTIAL, UPTIME_WINDOWS, fleet_health
from monitoring_service.models import Alert
from monitoring_service.status.schemas import (
    Component,
    ExternalStatus,
    PlatformStatus,
    PublicIncident,
    StatusPage,
)

__all__ = ["status_page"]

_MAX_INCIDENTS = 50


async def _platform(session: AsyncSession, watched: list[str]) -> PlatformStatus:
    health = await fleet_health(session, watched)
    essential = [s for s in health.services if s.service in ESSENTIAL] or health.services
    uptime: dict[str, float | None] = {}
    for window in UPTIME_WINDOWS:
        values = [s.uptime[window].uptime_percent for s in essential]
        known = [v for v in values if v is not None]
        uptime[window] = min(known) if known else None
    return PlatformStatus(
        status=health.status,
        uptime=uptime,
        components=[
            Component(name=s.service, status=s.status.value if s.status else "unknown")
            for s in health.services
        ],
    )


async def _platform_incidents(session: AsyncSession, days: int) -> list[PublicIncident]:
    """Fleet services that were down long enough to raise a service_down alert."""
    since = utcnow() - timedelta(days=days)
    stmt = (
        select(Alert)
        .where(
            Alert.kind == RuleKind.SERVICE_DOWN.value,
            or_(Alert.resolved_at.is_(None), Alert.resolved_at >= since),
        )
        .order_by(Alert.started_at.desc())
        .limit(_MAX_INCIDENTS)
    )
    return [
        PublicIncident(
            subject=a.subject,
            kind="platform",
            status="down",
            started_at=a.started_at,
            ended_at=a.resolved_at,
            ongoing=a.resolved_at is None,
        )
        for a in await session.scalars(stmt)
    ]


async def status_page(session: AsyncSession, watched: list[str], days: int) -> StatusPage:
    services = await external.listing(session, active_only=True)
    active = {s.id for s in services}
    incidents = [
        PublicIncident(
            subject=i.slug,
            kind="external",
            status=i.status,
            started_at=i.started_at,
            ended_at=i.ended_at,
            ongoing=i.ended_at is None,
        )
        for i in await external.incidents(session, days, active)
    ]
    incidents += await _platform_incidents(session, days)
    incidents.sort(key=lambda i: i.started_at, reverse=True)
    return StatusPage(
        generated_at=utcnow(),
        platform=await _platform(session, watched),
        services=[
            ExternalStatus(
                slug=s.slug,
                name=s.name,
                status=s.status,
                since=s.status_since,
                uptime={w: (s.uptime.get(w) or {}).get("uptime_percent") for w in UPTIME_WINDOWS},
            )
            for s in services
        ],
        incidents=incidents[:_MAX_INCIDENTS],
    )
