"""monitoring tables.

History tables (fleet checks, metric samples, external status changes) are append-only and
pruned by age. ``alerts`` holds at most one unresolved alert per (rule, subject): a partial
unique index makes that the database's promise, not only the evaluator's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fedimpute_shared.db import UUIDPrimaryKey, new_metadata, str_enum, utcnow
from fedimpute_shared.events import OutboxEvent as OutboxEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


def _now_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


class OutboxEvent(OutboxEventMixin, Base):
    """Events waiting for the relay (alert.raised, alert.resolved)."""


class FleetStatus(StrEnum):
    UP = "up"  # /health and /ready answer 200
    DEGRADED = "degraded"  # alive (/health) but not ready (database, Redis, migrations)
    DOWN = "down"  # /health does not answer 200 in time


class FleetCheck(UUIDPrimaryKey, Base):
    """One probe of one fleet service (its /health, then its /ready)."""

    __tablename__ = "fleet_checks"
    __table_args__ = (Index("ix_fleet_checks_service_checked_at", "service", "checked_at"),)

    service: Mapped[str] = mapped_column(String(50))
    status: Mapped[FleetStatus] = mapped_column(str_enum(FleetStatus, 10))
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_time_ms: Mapped[float | None] = mapped_column(Float)
    # Why it is not up: the probe's error, or /ready's failing checks (no secrets: it is ours).
    error: Mapped[str | None] = mapped_column(String(500))
    checked_at: Mapped[datetime] = _now_column()


class MetricSample(Base):
    """One value of one key series (``request_rate`` of ``file-manager``, ``cpu_percent`` of
    ``host``) at one scrape."""

    __tablename__ = "metric_samples"
    __table_args__ = (Index("ix_metric_samples_source_name_at", "source", "name", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = _now_column()


class ExternalService(Base):
    """An external imputation service as last heard of (the registry's events and API)."""

    __tablename__ = "external_services"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the registry's service id
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    service_type: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # the registry's HealthStatus
    status_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_time_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The registry's uptime windows ({"24h": {"checks", "up_checks", "uptime_percent"}, ...}).
    uptime: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class ExternalStatusChange(UUIDPrimaryKey, Base):
    """A change of an external service's health: the incidents of the status page."""

    __tablename__ = "external_status_changes"
    __table_args__ = (
        Index("ix_external_status_changes_service_changed_at", "service_id", "changed_at"),
    )

    service_id: Mapped[uuid.UUID]
    slug: Mapped[str] = mapped_column(String(100))
    previous_status: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(String(500))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # The event it came from (None: seen by the registry sync, the events having been missed).
    event_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)


class ProcessedEvent(Base):
    """An event whose effects are committed: a redelivered entry with this id is skipped."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = _now_column()


class DeadLetter(UUIDPrimaryKey, Base):
    """A stream entry that could not be processed, kept with the reason for admins."""

    __tablename__ = "dead_letters"

    stream_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str | None] = mapped_column(String(100))
    event_type: Mapped[str | None] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(String(2000))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = _now_column()


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # someone is on it; still unresolved
    RESOLVED = "resolved"


class Alert(UUIDPrimaryKey, Base):
    """One alert: raised when its rule's condition held long enough, resolved when it clears."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_unresolved_rule_subject",
            "rule",
            "subject",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index("ix_alerts_state_started_at", "state", "started_at"),
    )

    rule: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    state: Mapped[AlertState] = mapped_column(str_enum(AlertState, 20), default=AlertState.OPEN)
    started_at: Mapped[datetime] = _now_column()
    last_seen_at: Mapped[datetime] = _now_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_reason: Mapped[str | None] = mapped_column(String(20))
