"""Metrics bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SourceMetrics(BaseModel):
    source: str = Field(description="A fleet service, 'host', or 'event-stream'.")
    at: datetime | None
    series: dict[str, float]
    scrape_error: str | None = None


class MetricsOverview(BaseModel):
    sources: list[SourceMetrics]


class Point(BaseModel):
    at: datetime
    value: float


class Series(BaseModel):
    source: str
    name: str
    points: list[Point]
