"""notification tables.

What makes each effect happen once: ``processed_events`` (an event id is recorded in the
transaction of its effects), unique ``(event_id, user_id)`` on notifications and digest
entries, unique ``(event_id, to_address)`` on emails and ``(endpoint_id, event_id)`` on webhook
deliveries. No secret rests here in clear: a queued account email keeps the *sealed* token,
purged once sent or finally failed; webhook signing secrets are derived, never stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fedimpute_shared.db import Timestamps, UUIDPrimaryKey, new_metadata, str_enum, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class Category(StrEnum):
    """What a notification is about; preferences are set per category."""

    JOBS = "jobs"
    FILES = "files"
    SERVICES = "services"
    SECURITY = "security"
    ALERTS = "alerts"


class Channel(StrEnum):
    """Where a notification goes (besides the live WebSocket push of in-app ones)."""

    IN_APP = "in_app"
    EMAIL = "email"
    WEBHOOK = "webhook"


class Digest(StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being attempted under a lease)
    SENT = "sent"
    FAILED = "failed"  # finally: out of attempts, or refused for good


class WebhookFormat(StrEnum):
    GENERIC = "generic"  # our JSON document
    SLACK = "slack"  # Slack incoming-webhook payload ({"text": ..., "blocks": [...]})


def _created_at() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


# ---------------------------------------------------------------------------- events in


class ProcessedEvent(Base):
    """An event whose effects are committed: a redelivered entry with this id is skipped."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    processed_at: Mapped[datetime] = _created_at()


class DeadLetter(UUIDPrimaryKey, Base):
    """A stream entry that could not be processed, kept with the reason for admins."""

    __tablename__ = "dead_letters"

    stream_id: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[str | None] = mapped_column(String(100))
    event_type: Mapped[str | None] = mapped_column(String(100), index=True)
    reason: Mapped[str] = mapped_column(String(2000))
    # The entry's fields as read (bounded); replayable once the cause is fixed.
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = _created_at()


class ToldState(Base):
    """The last state a subject's watchers were told (a job's status, a service's health):
    the same state again is not told again, however often a producer repeats it."""

    __tablename__ = "told_states"

    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(50), primary_key=True)
    state: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ---------------------------------------------------------------------------- who gets what


class Preference(Base):
    """One user's choices; a user without a row has the defaults (preferences/defaults.py)."""

    __tablename__ = "preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # {"jobs": {"in_app": true, "email": true, "webhook": true}, ...}
    channels: Mapped[dict[str, dict[str, bool]]] = mapped_column(JSONB)
    digest: Mapped[Digest] = mapped_column(str_enum(Digest, 20), default=Digest.IMMEDIATE)
    digest_hour: Mapped[int] = mapped_column(SmallInteger, default=8)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    last_digest_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


# ---------------------------------------------------------------------------- in-app


class Notification(UUIDPrimaryKey, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id"),
        Index("ix_notifications_user_listing", "user_id", "created_at", "id"),
        Index(
            "ix_notifications_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID]
    category: Mapped[Category] = mapped_column(str_enum(Category, 20))
    event_type: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID | None]
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2048))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


# ---------------------------------------------------------------------------- deliveries


class DeliveryState:
    """Mixin: an outbound delivery retried with back-off until sent or finally failed.

    A worker claims due rows by moving ``next_attempt_at`` past a lease, so a crash mid-send
    leaves the row due again after the lease (at least once; receivers deduplicate on the id).
    """

    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, 20), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()


class EmailMessage(UUIDPrimaryKey, DeliveryState, Base):
    """An email to send: rendered at send time from its template and context."""

    __tablename__ = "email_messages"
    __table_args__ = (
        UniqueConstraint("event_id", "to_address"),
        Index(
            "ix_email_messages_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(100))  # an event type, or "digest"
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)  # never a secret (see module doc)
    # An account email's one-time token, still sealed; NULL once sent or finally failed.
    sealed_token: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[uuid.UUID | None]


class DigestEntry(UUIDPrimaryKey, Base):
    """An event waiting for its user's daily digest email."""

    __tablename__ = "digest_entries"
    __table_args__ = (UniqueConstraint("event_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(100))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created_at()


class WebhookEndpoint(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "webhook_endpoints"

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(String(2048))
    format: Mapped[WebhookFormat] = mapped_column(str_enum(WebhookFormat, 20))
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the signing-secret derivation: rotating the secret increments it.
    secret_version: Mapped[int] = mapped_column(Integer, default=1)


class WebhookDelivery(UUIDPrimaryKey, DeliveryState, Base):
    """One event to one endpoint: the delivery log its owner reads."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_log", "endpoint_id", "created_at", "id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)  # fixed: every attempt sends the same
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


# ---------------------------------------------------------------------------- templates


class TemplateOverride(Base):
    """An admin's version of one event type's template for one channel."""

    __tablename__ = "template_overrides"

    event_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, 20), primary_key=True)
    parts: Mapped[dict[str, str]] = mapped_column(JSONB)  # {"subject": ..., "text": ..., ...}
    updated_by: Mapped[uuid.UUID]
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
