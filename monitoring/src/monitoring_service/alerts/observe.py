"""What each rule kind sees now: one observation per subject (firing or not, the value).

Observations come from what the other workers stored: fleet checks, metric samples, external
services. A subject with no fresh data is not observed (its alert, if any, stays as it is)
rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from monitoring_service.alerts.rules import AlertRule, RuleKind
from monitoring_service.external import service as external
from monitoring_service.fleet import repository as fleet
from monitoring_service.models import FleetStatus, MetricSample
from monitoring_service.telemetry import repository as samples
from monitoring_service.telemetry.scrape import HOST, JOBS, STREAM

__all__ = ["FRESH", "Observation", "observe"]

# Metric samples older than this are not a current observation.
FRESH = timedelta(minutes=5)


@dataclass(frozen=True)
class Observation:
    subject: str
    firing: bool
    value: float | None
    summary: str


async def observe(session: AsyncSession, rule: AlertRule, watched: list[str]) -> list[Observation]:
    if rule.kind is RuleKind.SERVICE_DOWN:
        return await _service_down(session, rule, watched)
    if rule.kind is RuleKind.EXTERNAL_UNHEALTHY:
        return await _external(session)
    if rule.kind is RuleKind.JOB_FAILURE_RATE:
        return await _job_failures(session, rule)
    return await _thresholds(session, rule, watched)


async def _service_down(
    session: AsyncSession, rule: AlertRule, watched: list[str]
) -> list[Observation]:
    found = []
    for service in watched:
        statuses = await fleet.recent_statuses(session, service, rule.for_checks)
        if not statuses:
            continue
        down = len(statuses) == rule.for_checks and all(s is FleetStatus.DOWN for s in statuses)
        found.append(
            Observation(
                service, down, float(len(statuses)), f"{service} is down ({len(statuses)} checks)"
            )
        )
    return found


async def _external(session: AsyncSession) -> list[Observation]:
    found = []
    for service in await external.listing(session, active_only=False):
        bad = service.is_active and service.status not in external.GOOD_STATUSES | {"unknown"}
        summary = f"{service.slug} is {service.status}" + (
            f": {service.error}" if service.error else ""
        )
        found.append(Observation(service.slug, bad, None, summary[:500]))
    return found


def _by_kind(rule: AlertRule, source: str, name: str) -> str | None:
    """The subject a sample speaks about for this rule kind, or None."""
    if rule.kind is RuleKind.ERROR_RATE and name == "error_rate" and source not in (HOST, STREAM):
        return source
    if (
        rule.kind is RuleKind.LATENCY_P95
        and name == "latency_p95_ms"
        and source not in (HOST, STREAM)
    ):
        return source
    if rule.kind is RuleKind.DISK_USAGE and source == HOST and name.startswith("disk_percent:"):
        path = name.removeprefix("disk_percent:")
        return HOST if path == "/" else f"{HOST}:{path}"
    if rule.kind is RuleKind.CONSUMER_LAG and source == STREAM and name.startswith("consumer_lag:"):
        return name.removeprefix("consumer_lag:")
    return None


_UNITS = {
    RuleKind.ERROR_RATE: ("error rate", "%"),
    RuleKind.LATENCY_P95: ("p95 latency", " ms"),
    RuleKind.DISK_USAGE: ("disk use", "%"),
    RuleKind.CONSUMER_LAG: ("consumer lag", " events"),
}


async def _thresholds(
    session: AsyncSession, rule: AlertRule, watched: list[str]
) -> list[Observation]:
    assert rule.threshold is not None  # the rule's validator requires it for these kinds
    label, unit = _UNITS[rule.kind]
    found = []
    for sample in await samples.latest(session, utcnow() - FRESH):
        subject = _by_kind(rule, sample.source, sample.name)
        if subject is None:
            continue
        summary = f"{subject}: {label} {sample.value:g}{unit} (above {rule.threshold:g}{unit})"
        found.append(Observation(subject, sample.value > rule.threshold, sample.value, summary))
    return found


async def _outcomes(session: AsyncSession, since_hours: int, until_hours: int) -> dict[str, float]:
    now = utcnow()
    stmt = (
        select(MetricSample.name, func.sum(MetricSample.value))
        .where(
            MetricSample.source == "job-processor",
            MetricSample.name.like("jobs\\_%"),
            MetricSample.at >= now - timedelta(hours=since_hours),
            MetricSample.at < now - timedelta(hours=until_hours),
        )
        .group_by(MetricSample.name)
    )
    return {row[0].removeprefix("jobs_"): float(row[1]) for row in await session.execute(stmt)}


def _failure_rate(outcomes: dict[str, float]) -> tuple[float, float]:
    """(failed %, finished jobs) among completed, failed and cancelled."""
    finished = sum(outcomes.get(k, 0) for k in ("completed", "failed", "cancelled"))
    return (100 * outcomes.get("failed", 0) / finished if finished else 0.0), finished


async def _job_failures(session: AsyncSession, rule: AlertRule) -> list[Observation]:
    """The failure rate against an hour before: a jump, not a steady level. From
    job-processor's per-outcome counters when it exports them (the last hour against the hour
    before), else from its stats API (the 24 h rate now against an hour ago)."""
    assert rule.threshold is not None
    now_outcomes = await _outcomes(session, 1, 0)
    if now_outcomes:
        rate, finished = _failure_rate(now_outcomes)
        before, _ = _failure_rate(await _outcomes(session, 2, 1))
        window = "in the last hour"
    else:
        found = await _from_stats(session)
        if found is None:
            return []
        rate, finished, before = found
        window = "over 24 h"
    firing = (
        finished >= rule.min_jobs and rate > rule.threshold and rate - before >= rule.jump_points
    )
    summary = (
        f"job failure rate {rate:.0f}% {window} ({finished:g} jobs finished; "
        f"{before:.0f}% an hour before)"
    )
    return [Observation("jobs", firing, round(rate, 2), summary)]


async def _value_at(session: AsyncSession, name: str, newest_before: timedelta) -> float | None:
    """The ``jobs`` series ``name``: its newest value at least ``newest_before`` old."""
    stmt = (
        select(MetricSample.value)
        .where(
            MetricSample.source == JOBS,
            MetricSample.name == name,
            MetricSample.at <= utcnow() - newest_before,
        )
        .order_by(MetricSample.at.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def _from_stats(session: AsyncSession) -> tuple[float, float, float] | None:
    """(24 h failure rate now, jobs finished in 24 h, the rate an hour ago) from the ``jobs``
    samples; None without a fresh one."""
    latest = {
        s.name: s.value for s in await samples.latest(session, utcnow() - FRESH) if s.source == JOBS
    }
    if "finished_24h" not in latest:
        return None
    before = await _value_at(session, "failure_rate_24h", timedelta(hours=1))
    rate = latest.get("failure_rate_24h", 0.0)
    return rate, latest["finished_24h"], before if before is not None else rate
