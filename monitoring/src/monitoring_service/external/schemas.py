"""External services' bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ExternalServiceOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    service_type: str | None
    status: str
    status_since: datetime | None
    checked_at: datetime | None
    response_time_ms: float | None
    error: str | None
    is_active: bool
    uptime: dict[str, Any]
    synced_at: datetime | None


class IncidentOut(BaseModel):
    service_id: uuid.UUID
    slug: str
    status: str
    error: str | None
    started_at: datetime
    ended_at: datetime | None
    ongoing: bool


class ExternalOverview(BaseModel):
    services: list[ExternalServiceOut]
    incidents: list[IncidentOut]
