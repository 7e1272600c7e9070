"""Fleet health bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from monitoring_service.models import FleetStatus


class Overall(StrEnum):
    HEALTHY = "healthy"  # every watched service is up
    DEGRADED = "degraded"  # something is down or not ready, the platform still serves
    DOWN = "down"  # the gateway or user-service is down, or most of the fleet


class UptimeWindow(BaseModel):
    checks: int
    up_checks: int
    uptime_percent: float | None = Field(description="null when there was no check in the window")


class ServiceHealth(BaseModel):
    service: str
    status: FleetStatus | None = Field(description="null before the first check")
    checked_at: datetime | None
    response_time_ms: float | None
    http_status: int | None
    error: str | None
    uptime: dict[str, UptimeWindow] = Field(examples=[{"24h": {}, "7d": {}, "30d": {}}])


class FleetHealth(BaseModel):
    status: Overall
    checked_at: datetime | None
    services: list[ServiceHealth]


class FleetCheckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: FleetStatus
    http_status: int | None
    response_time_ms: float | None
    error: str | None
    checked_at: datetime
