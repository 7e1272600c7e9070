"""Metrics routes (admins): the latest key series of every source, and one series over time."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from fedimpute_shared.db import SessionDep, utcnow
from fedimpute_shared.problems import NotFound, problem_responses
from monitoring_service.dependencies import Admin
from monitoring_service.telemetry import repository
from monitoring_service.telemetry.schemas import MetricsOverview, Point, Series, SourceMetrics
from monitoring_service.telemetry.scrape import Scraper

router = APIRouter(prefix="/monitoring/metrics", tags=["metrics"])

# A source with no sample for this long is not shown as current.
_CURRENT = timedelta(minutes=15)


@router.get("", summary="The latest key series of every service, the host and the stream")
async def get_metrics(session: SessionDep, admin: Admin, request: Request) -> MetricsOverview:
    scraper: Scraper = request.state.scraper
    by_source: dict[str, SourceMetrics] = {}
    for sample in await repository.latest(session, utcnow() - _CURRENT):
        entry = by_source.setdefault(
            sample.source,
            SourceMetrics(
                source=sample.source,
                at=sample.at,
                series={},
                scrape_error=scraper.last_errors.get(sample.source),
            ),
        )
        entry.series[sample.name] = sample.value
        entry.at = max(entry.at or sample.at, sample.at)
    return MetricsOverview(sources=list(by_source.values()))


@router.get(
    "/{source}/{name}",
    summary="One series over time, oldest first",
    responses=problem_responses(NotFound),
)
async def get_series(
    source: str,
    name: str,
    session: SessionDep,
    admin: Admin,
    hours: Annotated[float, Query(gt=0, le=24 * 7, description="How far back")] = 24,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Series:
    rows = await repository.series(session, source, name, utcnow() - timedelta(hours=hours), limit)
    if not rows:
        raise NotFound(f"no samples of {name!r} from {source!r} in the last {hours:g} h")
    return Series(source=source, name=name, points=[Point(at=r.at, value=r.value) for r in rows])
