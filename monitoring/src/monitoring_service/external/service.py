"""External imputation services: what the registry's events and API say about them.

Events (``service.health_changed``) keep the status current between syncs and are the
incidents' record; the periodic sync with the registry's ``GET /internal/service-health``
brings names, uptime and any change whose event was missed (a change seen only by the sync is
recorded without an event id). An older event arriving after a newer state is recorded in the
history but does not overwrite the current status.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import ServiceDeactivated, ServiceHealthChanged
from monitoring_service.models import ExternalService, ExternalStatusChange

__all__ = [
    "GOOD_STATUSES",
    "Incident",
    "apply_deactivated",
    "apply_health_changed",
    "apply_sync",
    "incidents",
    "listing",
]

# What the registry counts as up (its uptime does the same): slow is still serving.
GOOD_STATUSES = frozenset({"healthy", "degraded"})


async def _get(session: AsyncSession, service_id: uuid.UUID) -> ExternalService | None:
    stmt = select(ExternalService).where(ExternalService.id == service_id).with_for_update()
    return (await session.scalars(stmt)).first()


async def apply_health_changed(session: AsyncSession, event: ServiceHealthChanged) -> None:
    """Record the change; make it the current status unless a newer one is known."""
    session.add(
        ExternalStatusChange(
            service_id=event.service_id,
            slug=event.service_slug,
            previous_status=event.previous_status,
            status=event.status,
            error=(event.error or None) and event.error[:500],
            changed_at=event.checked_at,
            event_id=event.event_id,
        )
    )
    service = await _get(session, event.service_id)
    if service is None:
        service = ExternalService(
            id=event.service_id, slug=event.service_slug, name=event.service_slug, uptime={}
        )
        session.add(service)
    elif service.checked_at is not None and service.checked_at > event.checked_at:
        return  # a late, older event: history only
    service.slug = event.service_slug
    if service.status != event.status:
        service.status_since = event.checked_at
    service.status = event.status
    service.checked_at = event.checked_at
    service.response_time_ms = event.response_time_ms
    service.error = (event.error or None) and event.error[:500]


async def apply_deactivated(session: AsyncSession, event: ServiceDeactivated) -> None:
    service = await _get(session, event.service_id)
    if service is not None:
        service.is_active = False


async def apply_sync(session: AsyncSession, summaries: list[dict[str, Any]]) -> int:
    """Bring every service to what the registry says; a status change not heard of by event is
    recorded too. Services the registry no longer lists are marked inactive."""
    now, seen = utcnow(), set()
    for item in summaries:
        service_id = uuid.UUID(str(item["id"]))
        seen.add(service_id)
        service = await _get(session, service_id)
        status, checked_at = str(item["status"]), _time(item.get("checked_at"))
        if service is None:
            service = ExternalService(id=service_id, status=status, status_since=checked_at)
            session.add(service)
        elif service.status != status and _newer(checked_at, service.checked_at):
            session.add(
                ExternalStatusChange(
                    service_id=service_id,
                    slug=str(item["slug"]),
                    previous_status=service.status,
                    status=status,
                    error=_short(item.get("error")),
                    changed_at=checked_at or now,
                )
            )
            service.status, service.status_since = status, checked_at or now
        service.slug, service.name = str(item["slug"]), str(item["name"])[:200]
        service.service_type = str(item.get("kind") or "")[:40] or None
        service.is_active = bool(item.get("is_active", True))
        if _newer(checked_at, service.checked_at):
            service.checked_at = checked_at
            service.response_time_ms = item.get("response_time_ms")
            service.error = _short(item.get("error"))
        service.uptime = dict(item.get("uptime") or {})
        service.synced_at = now
    for gone in await session.scalars(
        select(ExternalService).where(ExternalService.id.not_in(seen))
    ):
        gone.is_active = False
    return len(seen)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _newer(candidate: datetime | None, current: datetime | None) -> bool:
    return candidate is not None and (current is None or candidate >= current)


def _short(value: Any) -> str | None:
    return str(value)[:500] if value else None


async def listing(session: AsyncSession, *, active_only: bool) -> Sequence[ExternalService]:
    stmt = select(ExternalService).order_by(ExternalService.name)
    if active_only:
        stmt = stmt.where(ExternalService.is_active.is_(True))
    return (await session.scalars(stmt)).all()


@dataclass(frozen=True)
class Incident:
    """A period an external service was not serving: from a change to a bad status until the
    next change back to a good one (``ended_at`` None: still going on)."""

    service_id: uuid.UUID
    slug: str
    status: str
    error: str | None
    started_at: datetime
    ended_at: datetime | None


async def incidents(
    session: AsyncSession, days: int, service_ids: set[uuid.UUID] | None = None
) -> list[Incident]:
    """Incidents that were going on during the last ``days`` days, newest first."""
    since = utcnow() - timedelta(days=days)
    stmt = select(ExternalStatusChange).order_by(
        ExternalStatusChange.service_id, ExternalStatusChange.changed_at
    )
    if service_ids is not None:
        stmt = stmt.where(ExternalStatusChange.service_id.in_(service_ids))
    found: list[Incident] = []
    open_by_service: dict[uuid.UUID, Incident] = {}
    for change in await session.scalars(stmt):
        current = open_by_service.get(change.service_id)
        if change.status in GOOD_STATUSES:
            if current is not None:
                found.append(_ended(current, change.changed_at))
                del open_by_service[change.service_id]
        elif current is None:
            open_by_service[change.service_id] = Incident(
                change.service_id, change.slug, change.status, change.error, change.changed_at, None
            )
    found.extend(open_by_service.values())
    recent = [i for i in found if i.ended_at is None or i.ended_at >= since]
    return sorted(recent, key=lambda i: i.started_at, reverse=True)


def _ended(incident: Incident, at: datetime) -> Incident:
    return Incident(
        incident.service_id, incident.slug, incident.status, incident.error, incident.started_at, at
    )
