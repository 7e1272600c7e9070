"""Logic of health: checking a service, recording what was found, the caching rule, uptime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from service_registry.config import Settings
from service_registry.health import repository
from service_registry.health.http import ProbeClient
from service_registry.health.probes import ProbeLimits, ProbeResult, ProbeTarget, probe
from service_registry.health.recording import Recorded, record_results
from service_registry.health.schemas import (
    HealthReport,
    ServiceHealthSummary,
    Uptime,
    UptimeWindow,
)
from service_registry.models import HealthStatus, ImputationService
from service_registry.services.service import is_at_risk

UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def probe_limits(settings: Settings) -> ProbeLimits:
    return ProbeLimits(
        timeout_seconds=settings.health_check_timeout_seconds,
        max_body_bytes=settings.health_max_body_bytes,
        max_redirects=settings.health_max_redirects,
        degraded_after_ms=settings.degraded_after_ms,
        allow_private=settings.allow_private_urls,
    )


def target_of(service: ImputationService) -> ProbeTarget:
    return ProbeTarget(
        service.kind, service.base_url, dict(service.protocol_options or {}), service.api_url
    )


def is_fresh(
    service: ImputationService, settings: Settings, now: datetime, *, system: bool
) -> bool:
    """The 15 min / 1 min / 10 s rule: may the last check be reused for this caller?"""
    if service.health_checked_at is None:
        return False
    age = (now - service.health_checked_at).total_seconds()
    if service.health_status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED):
        return age < settings.healthy_cache_seconds
    limit = (
        settings.unhealthy_recheck_system_seconds
        if system
        else settings.unhealthy_recheck_user_seconds
    )
    return age < limit


@dataclass
class _Recent:
    result: ProbeResult
    at: datetime


class CheckCoordinator:
    """Single-flight on-demand checks: concurrent requests for one service share one probe.

    Without it, a burst of users opening a service page would fire a burst of probes at the
    remote service — exactly what the caching rule is there to prevent. The first caller
    probes and records (in its own committed transaction, so the followers read the new state);
    the others wait for it and reuse its result.
    """

    def __init__(self, reuse_seconds: float = 5.0) -> None:
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._recent: dict[uuid.UUID, _Recent] = {}
        self._reuse = timedelta(seconds=reuse_seconds)

    async def run(
        self, service_id: uuid.UUID, check: Callable[[], Awaitable[ProbeResult]]
    ) -> ProbeResult:
        lock = self._locks.setdefault(service_id, asyncio.Lock())
        async with lock:
            recent = self._recent.get(service_id)
            if recent and utcnow() - recent.at < self._reuse:
                return recent.result
            result = await check()
            self._recent[service_id] = _Recent(result, utcnow())
            return result


async def check_and_record(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: ProbeClient,
    service_id: uuid.UUID,
    target: ProbeTarget,
    settings: Settings,
) -> ProbeResult:
    """Probe now and record the result in its own transaction (row-locked against a sweep)."""
    result = await probe(client, target, probe_limits(settings))
    async with session_scope(sessionmaker) as session:
        await record_results(session, {service_id: Recorded(result, utcnow())}, settings)
    return result


async def current_health(
    session: AsyncSession,
    checker: OnDemandChecker,
    service: ImputationService,
    settings: Settings,
    *,
    system: bool,
    force: bool = False,
) -> HealthReport:
    """The service's health, re-checked only when the caching rule says it is stale."""
    fresh = not force and is_fresh(service, settings, utcnow(), system=system)
    details: dict[str, object] = {}
    if not fresh:
        details = (await checker.check(service)).details
        await session.refresh(service)  # the check committed the service's new state
    return report(service, settings, from_cache=fresh, details=details)


@dataclass
class OnDemandChecker:
    """What an on-demand check needs, bundled once in the lifespan."""

    sessionmaker: async_sessionmaker[AsyncSession]
    client: ProbeClient
    coordinator: CheckCoordinator
    settings: Settings

    async def check(self, service: ImputationService) -> ProbeResult:
        service_id, target = service.id, target_of(service)
        return await self.coordinator.run(
            service_id,
            lambda: check_and_record(
                self.sessionmaker, self.client, service_id, target, self.settings
            ),
        )


def report(
    service: ImputationService, settings: Settings, *, from_cache: bool, details: dict[str, object]
) -> HealthReport:
    return HealthReport(
        service_id=service.id,
        slug=service.slug,
        status=service.health_status,
        checked_at=service.health_checked_at,
        response_time_ms=service.response_time_ms,
        error=service.last_error,
        consecutive_failures=service.consecutive_failures,
        first_unhealthy_at=service.first_unhealthy_at,
        at_risk=is_at_risk(service.first_unhealthy_at, settings),
        is_active=service.is_active,
        from_cache=from_cache,
        details=details,
    )


async def uptime(session: AsyncSession, service_id: uuid.UUID) -> Uptime:
    now = utcnow()
    windows = {}
    for name, span in UPTIME_WINDOWS.items():
        total, up = await repository.counts_since(session, service_id, now - span)
        percent = round(100 * up / total, 2) if total else None
        windows[name] = UptimeWindow(checks=total, up_checks=up, uptime_percent=percent)
    return Uptime(service_id=service_id, windows=windows)


async def summaries(session: AsyncSession) -> list[ServiceHealthSummary]:
    """Every service not deleted, with its stored health and uptime windows."""
    rows = await repository.not_deleted(session)
    result = []
    for row in rows:
        windows = (await uptime(session, row.id)).windows
        result.append(
            ServiceHealthSummary(
                id=row.id,
                slug=row.slug,
                name=row.name,
                kind=str(row.kind),
                is_active=row.is_active,
                status=row.health_status,
                checked_at=row.health_checked_at,
                response_time_ms=row.response_time_ms,
                error=row.last_error,
                consecutive_failures=row.consecutive_failures,
                first_unhealthy_at=row.first_unhealthy_at,
                uptime=windows,
            )
        )
    return result


async def prune_history(session: AsyncSession, settings: Settings) -> int:
    cutoff = utcnow() - timedelta(days=settings.health_history_retention_days)
    return await repository.prune_before(session, cutoff)
