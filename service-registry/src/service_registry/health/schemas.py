"""Response bodies of the health API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service_registry.models import HealthStatus


class HealthReport(BaseModel):
    service_id: uuid.UUID
    slug: str
    status: HealthStatus
    checked_at: datetime | None
    response_time_ms: float | None
    error: str | None
    consecutive_failures: int
    first_unhealthy_at: datetime | None
    at_risk: bool
    is_active: bool
    from_cache: bool = Field(description="True when the last check was fresh enough to reuse.")
    details: dict[str, Any] = Field(default_factory=dict)


class HealthCheckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: HealthStatus
    http_status: int | None
    response_time_ms: float | None
    error: str | None
    checked_at: datetime


class UptimeWindow(BaseModel):
    checks: int
    up_checks: int
    uptime_percent: float | None = Field(description="null when there was no check in the window")


class Uptime(BaseModel):
    service_id: uuid.UUID
    windows: dict[str, UptimeWindow] = Field(examples=[{"24h": {}, "7d": {}, "30d": {}}])


class SweepAccepted(BaseModel):
    accepted: bool
    already_running: bool
    services: int | None = None


class ServiceHealthSummary(BaseModel):
    """One service as monitoring sees it (``GET /internal/service-health``)."""

    id: uuid.UUID
    slug: str
    name: str
    kind: str
    is_active: bool
    status: HealthStatus
    checked_at: datetime | None
    response_time_ms: float | None
    error: str | None
    consecutive_failures: int
    first_unhealthy_at: datetime | None
    uptime: dict[str, UptimeWindow]
