"""The dashboard: job figures and recent jobs from job-processor (``GET /internal/jobs/stats``
and ``/internal/jobs/recent``, with monitoring's service token), the external services from
monitoring's own records, the platform's status from the fleet checks.

Nothing is silently empty: when job-processor cannot be asked, or answers something
unreadable, the section says ``available: false`` with the reason, and the rest of the
dashboard is still served.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from monitoring_service.dashboard.schemas import (
    Dashboard,
    JobsSection,
    JobStats,
    RecentJob,
    RecentSection,
    ServiceCard,
)
from monitoring_service.external import service as external
from monitoring_service.fleet.service import current_overall

__all__ = ["build_dashboard"]

T = TypeVar("T")
_STATS = TypeAdapter(JobStats)
_RECENT = TypeAdapter(list[RecentJob])
_MAX_BODY = 1_048_576


class Unavailable(Exception):
    """job-processor could not be asked, or its answer could not be read (the message says)."""


async def _ask(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], adapter: TypeAdapter[T]
) -> T:
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise Unavailable(f"job-processor is unreachable ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise Unavailable(f"job-processor answered {response.status_code}")
    if len(response.content) > _MAX_BODY:
        raise Unavailable("job-processor's answer is too large")
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise Unavailable("job-processor's answer could not be read") from exc


def _scope(caller: Principal) -> dict[str, Any]:
    """Admins see everyone's jobs; everyone else their own."""
    return {} if caller.is_admin else {"owner_id": str(caller.user_id)}


async def _jobs(client: httpx.AsyncClient, params: dict[str, Any]) -> JobsSection:
    try:
        stats = await _ask(client, "/internal/jobs/stats", params, _STATS)
    except Unavailable as exc:
        return JobsSection(available=False, error=str(exc))
    finished = stats.last_24h.get("completed", 0) + stats.last_24h.get("failed", 0)
    return JobsSection(
        available=True,
        by_status=stats.by_status,
        last_24h=stats.last_24h,
        throughput_24h=finished + stats.last_24h.get("cancelled", 0),
        success_rate_24h=stats.success_rate_24h,
        per_service=stats.per_service,
    )


async def _recent(client: httpx.AsyncClient, params: dict[str, Any], limit: int) -> RecentSection:
    try:
        items = await _ask(client, "/internal/jobs/recent", params | {"limit": limit}, _RECENT)
    except Unavailable as exc:
        return RecentSection(available=False, error=str(exc))
    return RecentSection(available=True, items=items[:limit])


def _same_owner(section: RecentSection, owner: uuid.UUID | None) -> RecentSection:
    """Belt and braces: a user's dashboard never lists another user's job, whatever the
    upstream answered."""
    if owner is None or not section.available:
        return section
    return RecentSection(available=True, items=[j for j in section.items if j.owner_id == owner])


async def build_dashboard(
    session: AsyncSession,
    client: httpx.AsyncClient,
    caller: Principal,
    watched: list[str],
    recent_limit: int,
) -> Dashboard:
    params = _scope(caller)
    jobs, recent = await asyncio.gather(
        _jobs(client, params), _recent(client, params, recent_limit)
    )
    owner = None if caller.is_admin else caller.user_id
    services = await external.listing(session, active_only=True)
    queues = jobs.per_service if jobs.available else {}
    return Dashboard(
        scope="all" if caller.is_admin else "mine",
        generated_at=utcnow(),
        platform=await current_overall(session, watched),
        jobs=jobs,
        services=[
            ServiceCard(
                slug=s.slug,
                name=s.name,
                status=s.status,
                status_since=s.status_since,
                uptime_24h=_percent(s.uptime, "24h"),
                queue=queues.get(s.slug) if jobs.available else None,
            )
            for s in services
        ],
        recent_jobs=_same_owner(recent, owner),
    )


def _percent(uptime: dict[str, Any], window: str) -> float | None:
    value = (uptime.get(window) or {}).get("uptime_percent")
    return float(value) if isinstance(value, int | float) else None
