"""The public status page's body: what anyone may read (no errors, no internal detail)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from monitoring_service.fleet.schemas import Overall


class Component(BaseModel):
    name: str
    status: Literal["up", "degraded", "down", "unknown"]


class PlatformStatus(BaseModel):
    status: Overall
    uptime: dict[str, float | None] = Field(
        description="% of checks the platform's entry points (gateway, accounts) were up",
        examples=[{"24h": 100.0, "7d": 99.9, "30d": 99.5}],
    )
    components: list[Component]


class ExternalStatus(BaseModel):
    slug: str
    name: str
    status: str
    since: datetime | None
    uptime: dict[str, float | None]


class PublicIncident(BaseModel):
    subject: str = Field(description="An external service's slug, or a platform component")
    kind: Literal["external", "platform"]
    status: str
    started_at: datetime
    ended_at: datetime | None
    ongoing: bool


class StatusPage(BaseModel):
    generated_at: datetime
    platform: PlatformStatus
    services: list[ExternalStatus]
    incidents: list[PublicIncident]
