"""Fleet health: a poll round (probe every watched service, record the results), the overall
status, and uptime over 24 h, 7 d and 30 d."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from monitoring_service.config import Settings
from monitoring_service.fleet import repository
from monitoring_service.fleet.probe import ProbeResult, probe_all
from monitoring_service.fleet.schemas import FleetHealth, Overall, ServiceHealth, UptimeWindow
from monitoring_service.metrics import MonitoringMetrics
from monitoring_service.models import FleetCheck, FleetStatus

__all__ = [
    "UPTIME_WINDOWS",
    "FleetPoller",
    "current_overall",
    "fleet_health",
    "overall",
    "uptime",
]

UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# Without these nobody can use the platform: one of them down is the platform down.
ESSENTIAL = frozenset({"api-gateway", "user-service"})


def overall(statuses: dict[str, FleetStatus | None]) -> Overall:
    """The platform's status from its services' (a service never checked counts as down)."""
    down = {name for name, status in statuses.items() if status in (None, FleetStatus.DOWN)}
    if down & ESSENTIAL or len(down) * 2 > len(statuses):
        return Overall.DOWN
    if any(status is not FleetStatus.UP for status in statuses.values()):
        return Overall.DEGRADED
    return Overall.HEALTHY


async def uptime(session: AsyncSession) -> dict[str, dict[str, UptimeWindow]]:
    """Per service and window: checks, up checks and the share up."""
    now = utcnow()
    result: dict[str, dict[str, UptimeWindow]] = {}
    for window, span in UPTIME_WINDOWS.items():
        for service, (total, up) in (await repository.up_counts_since(session, now - span)).items():
            percent = round(100 * up / total, 2) if total else None
            result.setdefault(service, {})[window] = UptimeWindow(
                checks=total, up_checks=up, uptime_percent=percent
            )
    return result


def _empty_windows() -> dict[str, UptimeWindow]:
    return {w: UptimeWindow(checks=0, up_checks=0, uptime_percent=None) for w in UPTIME_WINDOWS}


async def current_overall(session: AsyncSession, watched: list[str]) -> Overall:
    """The overall status from the last checks only (no uptime to count)."""
    latest = {check.service: check.status for check in await repository.latest(session)}
    return overall({name: latest.get(name) for name in watched})


async def fleet_health(session: AsyncSession, watched: list[str]) -> FleetHealth:
    """The last check of every watched service, their uptime, and the overall status."""
    latest = {check.service: check for check in await repository.latest(session)}
    windows = await uptime(session)
    services = []
    for name in watched:
        check = latest.get(name)
        services.append(
            ServiceHealth(
                service=name,
                status=check.status if check else None,
                checked_at=check.checked_at if check else None,
                response_time_ms=check.response_time_ms if check else None,
                http_status=check.http_status if check else None,
                error=check.error if check else None,
                uptime=_empty_windows() | windows.get(name, {}),
            )
        )
    times = [s.checked_at for s in services if s.checked_at is not None]
    return FleetHealth(
        status=overall({s.service: s.status for s in services}),
        checked_at=max(times) if times else None,
        services=services,
    )


class FleetPoller:
    """One round: probe every watched service concurrently, record each result."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        settings: Settings,
        metrics: MonitoringMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._http = http
        self._settings = settings
        self._metrics = metrics

    async def poll_once(self) -> list[ProbeResult]:
        results = await probe_all(
            self._http, self._settings.fleet_urls(), self._settings.fleet_probe_timeout_seconds
        )
        now = utcnow()
        async with session_scope(self._sessionmaker) as session:
            session.add_all(
                FleetCheck(
                    service=r.service,
                    status=r.status,
                    http_status=r.http_status,
                    response_time_ms=r.response_time_ms,
                    error=r.error,
                    checked_at=now,
                )
                for r in results
            )
        for r in results:
            self._metrics.fleet_up.labels(r.service).set(1 if r.status is FleetStatus.UP else 0)
        return results

    async def prune(self) -> int:
        cutoff = utcnow() - timedelta(days=self._settings.history_retention_days)
        async with session_scope(self._sessionmaker) as session:
            return await repository.prune_before(session, cutoff)
