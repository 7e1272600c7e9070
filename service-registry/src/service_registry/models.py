"""service-registry tables. No secret is ever stored here: users' credentials for external
services live encrypted in user-service's vault."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from fedimpute_shared.db import Timestamps, UUIDPrimaryKey, new_metadata, str_enum
from fedimpute_shared.events import OutboxEvent as OutboxEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class ServiceKind(StrEnum):
    """Which protocol a service speaks (one adapter per kind in job-processor)."""

    MICHIGAN = "michigan"  # Cloudgene API v2: Michigan, TOPMed, H3Africa/AfriGen-D
    GA4GH_WES = "ga4gh_wes"  # GA4GH WES 1.0/1.1: ILIFU, eLwazi nodes...
    DNASTACK = "dnastack"  # DNAstack WES over Cromwell, or Workbench


class CredentialType(StrEnum):
    NONE = "none"
    API_TOKEN = "api_token"  # Cloudgene X-Auth-Token
    BEARER_TOKEN = "bearer_token"  # a WES node behind OAuth2 with user tokens
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials"  # DNAstack client id + secret


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # answers, but slowly or partially
    UNHEALTHY = "unhealthy"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"  # never checked yet


class PanelAccess(StrEnum):
    PUBLIC = "public"
    PERMISSION_REQUIRED = "permission_required"


class ImputationService(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "imputation_services"
    __table_args__ = (
        CheckConstraint("latitude IS NULL OR latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint(
            "longitude IS NULL OR longitude BETWEEN -180 AND 180", name="longitude_range"
        ),
        CheckConstraint(
            "min_samples IS NULL OR max_samples IS NULL OR min_samples <= max_samples",
            name="sample_bounds",
        ),
        Index("ix_imputation_services_active_health", "is_active", "health_status"),
    )

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[ServiceKind] = mapped_column(str_enum(ServiceKind, 20))
    base_url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(100))
    # The bare Cloudgene app id (``imputationserver2``); the version the server runs is data.
    cloudgene_app_id: Mapped[str | None] = mapped_column(String(200))
    cloudgene_app_version: Mapped[str | None] = mapped_column(String(100))
    # Where a WES node's API answers (its base URL, or that plus /ga4gh/wes/v1), as found.
    api_url: Mapped[str | None] = mapped_column(String(2048))
    # What a WES node's service-info says it can run (see workflows/capabilities.py).
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # How job-processor builds a WES run for this node (see workflows/schemas.py).
    workflow_profile: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Non-secret protocol settings (e.g. DNAstack mode, namespace, token endpoint).
    protocol_options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    city: Mapped[str | None] = mapped_column(String(200))
    data_centre: Mapped[str | None] = mapped_column(String(200))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)

    max_file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    min_samples: Mapped[int | None] = mapped_column(Integer)
    max_samples: Mapped[int | None] = mapped_column(Integer)
    supported_builds: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    supported_formats: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list)

    requires_credentials: Mapped[bool] = mapped_column(Boolean, default=False)
    credential_type: Mapped[CredentialType] = mapped_column(
        str_enum(CredentialType, 40), default=CredentialType.NONE
    )

    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    health_status: Mapped[HealthStatus] = mapped_column(
        str_enum(HealthStatus, 20), default=HealthStatus.UNKNOWN
    )
    health_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_time_ms: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    first_unhealthy_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    panels: Mapped[list[ReferencePanel]] = relationship(
        back_populates="service", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class ReferencePanel(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "reference_panels"
    __table_args__ = (
        UniqueConstraint("service_id", "slug"),
        CheckConstraint("samples_count IS NULL OR samples_count >= 0", name="samples_nonneg"),
        CheckConstraint("variants_count IS NULL OR variants_count >= 0", name="variants_nonneg"),
    )

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("imputation_services.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(100))
    # What the remote service calls it: Cloudgene "apps@h3africa-v6hc-s@1.0.0" (the key as listed,
    # version included), or the id a WES node publishes in its service-info tags.
    remote_id: Mapped[str] = mapped_column(String(500))
    # The panel's version: data, not identity (a new version updates the same row).
    version: Mapped[str | None] = mapped_column(String(100))
    # What a WES workflow's panel input gets (a directory on the node); None for Cloudgene.
    location: Mapped[str | None] = mapped_column(String(2048))
    chromosomes: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    populations: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    build: Mapped[str | None] = mapped_column(String(10))
    # Counts are nullable on purpose: unknown stays unknown, never invented.
    samples_count: Mapped[int | None] = mapped_column(Integer)
    variants_count: Mapped[int | None] = mapped_column(BigInteger)
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)
    access: Mapped[PanelAccess] = mapped_column(
        str_enum(PanelAccess, 30), default=PanelAccess.PUBLIC
    )
    # Set when sync-panels created or last confirmed the panel on the remote service.
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    service: Mapped[ImputationService] = relationship(back_populates="panels", lazy="raise")


class ServiceHealthCheck(UUIDPrimaryKey, Base):
    """One probe of one service; pruned after ``health_history_retention_days``."""

    __tablename__ = "service_health_checks"
    __table_args__ = (Index("ix_service_health_checks_service_time", "service_id", "checked_at"),)

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("imputation_services.id", ondelete="CASCADE")
    )
    status: Mapped[HealthStatus] = mapped_column(str_enum(HealthStatus, 20))
    http_status: Mapped[int | None] = mapped_column(Integer)
    response_time_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OutboxEvent(OutboxEventMixin, Base):
    """Events waiting for the relay (service.health_changed, service.deactivated)."""
