"""The metrics round: every watched service's /metrics (concurrently, bounded), the host's CPU,
memory and disk, and the event stream's consumer groups; each reduced to key series stored as
samples. The previous scrape of each service is kept in memory to compute rates; after a
restart the first round only sets the baseline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psutil
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from monitoring_service.config import Settings
from monitoring_service.dashboard.schemas import JobStats
from monitoring_service.metrics import MonitoringMetrics
from monitoring_service.models import MetricSample
from monitoring_service.telemetry.parse import Garbage, Totals, parse_totals
from monitoring_service.telemetry.series import key_series

__all__ = [
    "HOST",
    "JOBS",
    "STREAM",
    "Limits",
    "ScrapeResult",
    "Scraper",
    "fetch_metrics",
    "host_series",
    "job_series",
]

logger = logging.getLogger(__name__)

HOST = "host"  # the source name of the host's series
STREAM = "event-stream"  # the source name of the consumer groups' lag
JOBS = "jobs"  # the source name of job-processor's job figures (its /internal/jobs/stats)


_STATS = TypeAdapter(JobStats)


@dataclass(frozen=True)
class ScrapeResult:
    service: str
    outcome: str  # ok | unreachable | refused | garbage
    error: str | None
    totals: Totals | None


@dataclass(frozen=True)
class Limits:
    seconds: float  # the whole request
    max_bytes: int
    max_samples: int


async def fetch_metrics(
    client: httpx.AsyncClient,
    service: str,
    url: str,
    limits: Limits,
    auth: httpx.Auth | None = None,
) -> ScrapeResult:
    """One service's /metrics, read up to ``limits.max_bytes`` and parsed; never raises."""
    seconds, max_bytes = limits.seconds, limits.max_bytes
    try:
        async with (
            asyncio.timeout(seconds),
            client.stream(
                "GET", f"{url}/metrics", timeout=seconds, auth=auth or httpx.USE_CLIENT_DEFAULT
            ) as response,
        ):
            if response.status_code != 200:
                return ScrapeResult(
                    service, "refused", f"/metrics answered {response.status_code}", None
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    return ScrapeResult(
                        service, "refused", f"/metrics larger than {max_bytes} bytes", None
                    )
    except (TimeoutError, httpx.HTTPError) as exc:
        return ScrapeResult(service, "unreachable", f"unreachable: {type(exc).__name__}", None)
    return _parsed(service, bytes(body), limits.max_samples)


def _parsed(service: str, body: bytes, max_samples: int) -> ScrapeResult:
    try:
        text = body.decode("utf-8")
        return ScrapeResult(service, "ok", None, parse_totals(text, max_samples))
    except (UnicodeDecodeError, Garbage) as exc:
        reason = str(exc) if isinstance(exc, Garbage) else "not UTF-8"
        return ScrapeResult(service, "garbage", f"/metrics is garbage: {reason}"[:300], None)


def host_series(disk_paths: list[str]) -> dict[str, float]:
    """CPU (since the previous call), memory and each watched file system's use, in %."""
    series = {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(psutil.virtual_memory().percent),
    }
    for path in disk_paths:
        try:
            series[f"disk_percent:{path}"[:100]] = float(psutil.disk_usage(path).percent)
        except OSError:
            logger.warning("disk usage of %s unreadable", path)
    return series


async def stream_lag(redis: Redis, stream: str) -> dict[str, float]:
    """Each consumer group's lag on the event stream (entries not yet delivered to it)."""
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except RedisError:
        return {}
    result = {}
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else str(group["name"])
        lag = group.get("lag")
        if lag is not None:
            result[f"consumer_lag:{name}"[:100]] = float(lag)
    return result


async def job_series(client: httpx.AsyncClient) -> tuple[dict[str, float], str | None]:
    """Every job's figures from job-processor (all owners): the 24 h failure rate, finished,
    queued and active jobs. Never raises: (series, error)."""
    try:
        response = await client.get("/internal/jobs/stats")
        response.raise_for_status()
        stats = _STATS.validate_json(response.content)
    except (httpx.HTTPError, ValidationError) as exc:
        return {}, f"job-processor stats unavailable: {type(exc).__name__}"
    completed, failed = stats.last_24h.get("completed", 0), stats.last_24h.get("failed", 0)
    series = {
        "finished_24h": float(completed + failed),
        "queued": float(sum(q.queued for q in stats.per_service.values())),
        "active": float(sum(q.active for q in stats.per_service.values())),
    }
    if completed + failed:
        series["failure_rate_24h"] = round(100 * failed / (completed + failed), 2)
    return series, None


class Scraper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        redis: Redis | None,
        settings: Settings,
        metrics: MonitoringMetrics,
        job_processor: httpx.AsyncClient | None = None,
        auth_for: Callable[[str], httpx.Auth] | None = None,
    ) -> None:
        self._auth_for = auth_for
        self._sessionmaker = sessionmaker
        self._job_processor = job_processor
        self._http = http
        self._redis = redis
        self._settings = settings
        self._metrics = metrics
        self._previous: dict[str, tuple[float, Totals]] = {}
        self.last_errors: dict[str, str | None] = {}

    async def scrape_once(self) -> dict[str, dict[str, float]]:
        """One round; the series stored, by source."""
        s = self._settings
        limits = Limits(s.fleet_probe_timeout_seconds, s.metrics_max_bytes, s.metrics_max_samples)
        results = await asyncio.gather(
            *(
                fetch_metrics(self._http, name, url, limits, self._auth(name))
                for name, url in s.fleet_urls().items()
            )
        )
        now_mono, stored = time.monotonic(), {}
        for result in results:
            self._metrics.scrapes.labels(result.outcome).inc()
            self.last_errors[result.service] = result.error
            series = {"scrape_ok": 1.0 if result.totals is not None else 0.0}
            if result.totals is not None:
                before = self._previous.get(result.service)
                seconds = now_mono - before[0] if before else 0.0
                series |= key_series(before[1] if before else None, result.totals, seconds)
                self._previous[result.service] = (now_mono, result.totals)
            stored[result.service] = series
        stored[HOST] = host_series(s.disk_paths)
        if self._redis is not None:
            stored[STREAM] = await stream_lag(self._redis, s.event_stream)
        if self._job_processor is not None and "job-processor" in s.watched_services:
            stored[JOBS], self.last_errors[JOBS] = await job_series(self._job_processor)
        await self._store(stored, utcnow())
        return stored

    def _auth(self, service: str) -> httpx.Auth | None:
        return self._auth_for(service) if self._auth_for is not None else None

    async def _store(self, stored: dict[str, dict[str, float]], at: datetime) -> None:
        async with session_scope(self._sessionmaker) as session:
            session.add_all(
                MetricSample(source=source, name=name, value=value, at=at)
                for source, series in stored.items()
                for name, value in series.items()
            )

    async def prune(self) -> int:
        cutoff = utcnow() - timedelta(days=self._settings.metrics_retention_days)
        async with session_scope(self._sessionmaker) as session:
            result = await session.execute(delete(MetricSample).where(MetricSample.at < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)
