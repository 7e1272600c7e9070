"""Dashboard bodies, and job-processor's answers as read (its internal contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from monitoring_service.fleet.schemas import Overall


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ServiceQueue(_Upstream):
    active: int = Field(ge=0)
    queued: int = Field(ge=0)
    failed_24h: int = Field(ge=0)


class JobStats(_Upstream):
    """``GET /internal/jobs/stats`` of job-processor."""

    by_status: dict[str, int]
    last_24h: dict[str, int]
    success_rate_24h: float | None
    per_service: dict[str, ServiceQueue] = Field(max_length=1000)


class RecentJob(_Upstream):
    """One of ``GET /internal/jobs/recent``."""

    id: uuid.UUID
    name: str = Field(max_length=500)
    status: str = Field(max_length=40)
    service_slug: str = Field(max_length=100)
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class JobsSection(BaseModel):
    available: bool = Field(description="false: job-processor could not be asked (see error)")
    error: str | None = None
    by_status: dict[str, int] | None = None
    last_24h: dict[str, int] | None = None
    throughput_24h: int | None = Field(default=None, description="Jobs finished in 24 h")
    success_rate_24h: float | None = None
    per_service: dict[str, ServiceQueue] = Field(default_factory=dict)


class RecentSection(BaseModel):
    available: bool
    error: str | None = None
    items: list[RecentJob] = Field(default_factory=list)


class ServiceCard(BaseModel):
    slug: str
    name: str
    status: str
    status_since: datetime | None
    uptime_24h: float | None
    queue: ServiceQueue | None = Field(description="null when job-processor is unavailable")


class Dashboard(BaseModel):
    scope: Literal["mine", "all"]
    generated_at: datetime
    platform: Overall
    jobs: JobsSection
    services: list[ServiceCard]
    recent_jobs: RecentSection
