"""Domain events: versioned Pydantic contracts and the transactional outbox (DESIGN.md §5).

A producer calls :func:`add_to_outbox` in the same transaction as the change the event
describes, so the event exists if and only if the change was committed. The relay
(:mod:`fedimpute_shared.outbox`) publishes outbox rows, in order, to the Redis stream
:data:`EVENT_STREAM`; consumers deduplicate on ``event_id``. Every event type is a subclass of
:class:`Event` with a fixed ``event_type`` and ``version``; changing a payload incompatibly means
a new version, never an edit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from fedimpute_shared.db import utcnow

__all__ = [
    "EVENT_STREAM",
    "AccountMailEvent",
    "AlertRaised",
    "AlertResolved",
    "AlertSeverity",
    "Event",
    "FileExpiring",
    "FileValidated",
    "HealthStatus",
    "JobCancelled",
    "JobCompleted",
    "JobFailed",
    "JobStatus",
    "JobStatusChanged",
    "OutboxEvent",
    "ServiceDeactivated",
    "ServiceHealthChanged",
    "UserAccountUnlockRequested",
    "UserEmailVerificationRequested",
    "UserEmailVerificationRequestedV1",
    "UserPasswordResetRequested",
    "UserPasswordResetRequestedV1",
    "UserRegistrationAttempted",
    "add_to_outbox",
]

EVENT_STREAM = "fedimpute:events"


class Event(BaseModel):
    """Envelope fields every event carries."""

    event_type: ClassVar[str]
    version: ClassVar[int] = 1

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str

    def envelope(self) -> dict[str, Any]:
        """The JSON published on the stream: type, version and the event's fields."""
        return {
            "event_type": self.event_type,
            "version": self.version,
            **self.model_dump(mode="json"),
        }


HealthStatus = Literal["healthy", "degraded", "unhealthy", "timeout", "unknown"]


class ServiceHealthChanged(Event):
    """An external imputation service changed health status (service-registry)."""

    event_type: ClassVar[str] = "service.health_changed"

    service_id: uuid.UUID
    service_slug: str
    previous_status: HealthStatus
    status: HealthStatus
    error: str | None = None
    response_time_ms: float | None = None
    checked_at: datetime


class ServiceDeactivated(Event):
    """A service was switched off automatically after being unhealthy too long."""

    event_type: ClassVar[str] = "service.deactivated"

    service_id: uuid.UUID
    service_slug: str
    reason: str


class AccountMailEvent(Event):
    """What every account email event carries (docs/notification.md, "Account emails").

    ``sealed_token`` is the one-time token sealed to the notification service's delivery key
    (:mod:`fedimpute_shared.sealed`): the producer keeps only its hash, and neither the outbox
    row, nor the stream entry, nor a log line holds anything usable (issue 10, item 5). Only the
    notification service opens it, to render the email's link. No other field is secret.
    """

    user_id: uuid.UUID
    email: str
    username: str
    sealed_token: str
    expires_at: datetime


class UserPasswordResetRequested(AccountMailEvent):
    """A user asked to reset a forgotten password (user-service); notification emails the link
    (``/reset-password?token=...``). Version 2: the token is sealed."""

    event_type: ClassVar[str] = "user.password_reset_requested"
    version: ClassVar[int] = 2


class UserEmailVerificationRequested(AccountMailEvent):
    """A new or changed email address must be confirmed (user-service): ``/verify-email``.
    Version 2: the token is sealed."""

    event_type: ClassVar[str] = "user.email_verification_requested"
    version: ClassVar[int] = 2


class UserAccountUnlockRequested(AccountMailEvent):
    """An account was locked by failed logins (user-service); the email tells its owner, with
    a link (``/unlock?token=...``) that lifts the lock. ``locked_until``: when it lifts by
    itself."""

    event_type: ClassVar[str] = "user.account_unlock_requested"

    locked_until: datetime


class UserRegistrationAttempted(AccountMailEvent):
    """Someone tried to register with an address that already has an account (user-service).
    The registration answer does not say so; the owner is told by email, with a password
    reset link (``/reset-password?token=...``) in case it was them."""

    event_type: ClassVar[str] = "user.registration_attempted"


class UserPasswordResetRequestedV1(Event):
    """Version 1 of ``user.password_reset_requested``, which carried the token in clear.

    No longer produced; kept so the old payload stays described. Consumers refuse it.
    """

    event_type: ClassVar[str] = "user.password_reset_requested"

    user_id: uuid.UUID
    email: str
    username: str
    reset_token: str
    expires_at: datetime


class UserEmailVerificationRequestedV1(Event):
    """Version 1 of ``user.email_verification_requested`` (token in clear; no longer produced)."""

    event_type: ClassVar[str] = "user.email_verification_requested"

    user_id: uuid.UUID
    email: str
    username: str
    verification_token: str
    expires_at: datetime


class FileValidated(Event):
    """An uploaded file's validation finished (file-manager)."""

    event_type: ClassVar[str] = "file.validated"

    file_id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    status: Literal["valid", "invalid", "not_validated"]
    error_count: int = 0
    warning_count: int = 0


class FileExpiring(Event):
    """A file will be deleted by retention soon (file-manager); the owner is warned."""

    event_type: ClassVar[str] = "file.expiring"

    file_id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    expires_at: datetime


AlertSeverity = Literal["warning", "critical"]


class AlertRaised(Event):
    """A monitoring alert opened (monitoring); notification sends it to the admins.

    One alert per rule and subject is open at a time (deduplicated): a condition that stays
    true raises one ``alert.raised``, and one ``alert.resolved`` when it clears.
    """

    event_type: ClassVar[str] = "alert.raised"

    alert_id: uuid.UUID
    rule: str  # the configured rule's name ("external-service-unhealthy")
    # What the rule watches: service_down, error_rate, latency_p95, external_unhealthy,
    # disk_usage, job_failure_rate, consumer_lag (docs/monitoring.md lists them).
    kind: str
    severity: AlertSeverity
    # What the alert is about: a fleet service ("file-manager"), an external service's slug
    # ("sandbox-wes"), "host", or a consumer group of the event stream ("notification").
    subject: str
    summary: str  # one line for a person: "sandbox-wes is unhealthy (3 min)"
    value: float | None = None  # the observed value that crossed the threshold
    threshold: float | None = None
    started_at: datetime


class AlertResolved(Event):
    """A monitoring alert closed (monitoring): its condition cleared, or its rule was removed."""

    event_type: ClassVar[str] = "alert.resolved"

    alert_id: uuid.UUID
    rule: str
    kind: str
    severity: AlertSeverity
    subject: str
    summary: str  # the summary the alert was raised with
    started_at: datetime
    resolved_at: datetime
    reason: Literal["cleared", "rule_removed"]


JobStatus = Literal[
    "pending", "submitting", "queued", "running", "cancelling", "completed", "failed", "cancelled"
]


class _JobEvent(Event):
    """What every job event says about the job (job-processor)."""

    job_id: uuid.UUID
    owner_id: uuid.UUID
    job_name: str
    service_id: uuid.UUID
    service_slug: str
    batch_id: uuid.UUID | None = None


class JobStatusChanged(_JobEvent):
    """A job moved from one status to another; one event per stored transition."""

    event_type: ClassVar[str] = "job.status_changed"

    previous_status: JobStatus | None
    status: JobStatus
    message: str | None = None
    remote_state: str | None = None


class JobCompleted(_JobEvent):
    """A job finished and its result files are stored in file-manager."""

    event_type: ClassVar[str] = "job.completed"

    result_file_ids: list[uuid.UUID]
    finished_at: datetime


class JobFailed(_JobEvent):
    """A job failed; ``message`` says why in words the user can act on."""

    event_type: ClassVar[str] = "job.failed"

    message: str
    finished_at: datetime


class JobCancelled(_JobEvent):
    """A job was cancelled (by its owner, an admin, or the remote service)."""

    event_type: ClassVar[str] = "job.cancelled"

    message: str | None = None
    finished_at: datetime


class OutboxEvent:
    """Model mixin for a service's ``outbox_events`` table (each service declares its own).

    ``seq`` (assigned by Postgres in insertion order) is the order the relay publishes in;
    ``created_at`` alone cannot be (equal timestamps within a transaction, a frozen test clock).
    """

    __tablename__ = "outbox_events"

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, ...]:
        # What the relay reads each round: the unpublished rows in order.
        return (
            Index(
                "ix_outbox_events_pending",
                "seq",
                postgresql_where=text("published_at IS NULL"),
            ),
        )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), index=True
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


async def add_to_outbox(session: AsyncSession, model: type[OutboxEvent], event: Event) -> None:
    """Stage ``event`` in the caller's transaction (committed with the change, or not at all)."""
    row = model()
    row.id = event.event_id
    row.event_type = event.event_type
    row.version = event.version
    row.payload = event.envelope()
    session.add(row)
