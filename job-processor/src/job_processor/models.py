"""job-processor tables.

``jobs`` carries the status (moved only through :mod:`job_processor.jobs.states`), what the
remote side says beside it (state, progress, queue position, step messages), and the worker
bookkeeping: ``next_action_at`` (when a worker should next look at it), the lease
(``lease_owner``/``lease_expires_at``: a crashed worker's claim simply expires) and
``submit_attempts`` (a job with an attempt behind it is looked up remotely before any new
submission, so it is never sent twice). ``job_status_history`` keeps every transition;
``idempotency_keys`` the first answer to a keyed ``POST /jobs``. ``batch_id``, ``parent_id`` and
``template_id`` are for federated batches and templates (nullable, no foreign table yet).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fedimpute_shared.db import Timestamps, UUIDPrimaryKey, new_metadata, str_enum, utcnow
from fedimpute_shared.events import OutboxEvent as OutboxEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class JobStatus(StrEnum):
    """The normalized job states (the same names as ``fedimpute_shared.events.JobStatus``)."""

    PENDING = "pending"  # stored, not yet sent
    SUBMITTING = "submitting"  # a worker is sending it (or reconciling a lost answer)
    QUEUED = "queued"  # the remote service accepted it and has not started it
    RUNNING = "running"
    CANCELLING = "cancelling"  # cancel asked; waiting for the remote service to confirm
    COMPLETED = "completed"  # finished remotely and its results are stored in file-manager
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobMode(StrEnum):
    IMPUTATION = "imputation"
    QC_ONLY = "qc_only"


class Phasing(StrEnum):
    EAGLE = "eagle"
    BEAGLE = "beagle"
    NO_PHASING = "no_phasing"


class OutboxEvent(OutboxEventMixin, Base):
    """Job events waiting for the relay (job.status_changed, job.completed, ...)."""


class Job(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "jobs"

    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)

    # The target, as the registry described it when the job was created.
    service_id: Mapped[uuid.UUID] = mapped_column(index=True)
    service_slug: Mapped[str] = mapped_column(String(100), index=True)
    service_type: Mapped[str] = mapped_column(String(20))
    panel_id: Mapped[uuid.UUID]
    panel_slug: Mapped[str] = mapped_column(String(200))
    panel_remote_id: Mapped[str] = mapped_column(String(500))

    build: Mapped[str] = mapped_column(String(10))
    phasing: Mapped[Phasing] = mapped_column(str_enum(Phasing, 20))
    population: Mapped[str | None] = mapped_column(String(100))
    r2_filter: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[JobMode] = mapped_column(str_enum(JobMode, 20))
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default=text("'{}'")
    )
    input_file_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))
    # [{file_id, filename, size, sha256}] as file-manager reported them at creation
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)

    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, 20), index=True)
    status_message: Mapped[str | None] = mapped_column(Text)

    # What the remote side says.
    remote_id: Mapped[str | None] = mapped_column(String(500))
    remote_state: Mapped[str | None] = mapped_column(String(100))
    progress: Mapped[float | None] = mapped_column(Float)
    queue_position: Mapped[int | None] = mapped_column(Integer)
    remote_messages: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # A visible note while the job waits on its service (unreachable, unhealthy, a cancel the
    # remote ignores); cleared when things move again.
    paused_note: Mapped[str | None] = mapped_column(Text)

    # Worker bookkeeping.
    next_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    poll_interval_seconds: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    poll_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_sent: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The remote job finished: results are being collected (status stays running until stored).
    results_ready: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # {remote result name: file id} already stored in file-manager (a resumed collection
    # skips them).
    collected: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    result_notes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    result_file_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid()), default=list, server_default=text("'{}'")
    )
    # The Cloudgene result zip password (AES-GCM under RESULT_PASSWORD_KEY); shown to the owner.
    result_password_encrypted: Mapped[str | None] = mapped_column(Text)

    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # For what comes later (batches, templates, schedules) and for retries.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_batches.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_templates.id", ondelete="SET NULL")
    )
    retry_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_jobs_owner_created", "owner_id", "created_at", "id"),
        # What the workers scan: unfinished jobs by when they are due.
        Index(
            "ix_jobs_due",
            "next_action_at",
            postgresql_where=text(
                "status IN ('pending','submitting','queued','running','cancelling')"
            ),
        ),
    )


class JobStatusHistory(UUIDPrimaryKey, Base):
    """One row per transition: when, from, to, why, and the raw remote state."""

    __tablename__ = "job_status_history"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    remote_state: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


class IdempotencyKey(UUIDPrimaryKey, Base):
    """The first answer to ``POST /jobs`` with an ``Idempotency-Key``, per user and key."""

    __tablename__ = "idempotency_keys"

    owner_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )

    __table_args__ = (UniqueConstraint("owner_id", "key"),)


# ---------------------------------------------------------------------------------------------
# Templates, batches and schedules (job_processor.templates / .batches / .schedules).


class JobTemplate(UUIDPrimaryKey, Timestamps, Base):
    """A saved parameter set: everything of ``POST /jobs`` except the input files. Private to its
    owner, or shared (every user may read and submit it; only the owner changes it)."""

    __tablename__ = "job_templates"

    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    service: Mapped[str] = mapped_column(String(200))  # id or slug, resolved at each submission
    panel: Mapped[str] = mapped_column(String(200))
    build: Mapped[str] = mapped_column(String(10))
    phasing: Mapped[Phasing] = mapped_column(str_enum(Phasing, 20))
    population: Mapped[str | None] = mapped_column(String(100))
    r2_filter: Mapped[float | None] = mapped_column(Float)
    mode: Mapped[JobMode] = mapped_column(str_enum(JobMode, 20))
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default=text("'{}'")
    )
    usage_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        Index("ix_job_templates_shared", "shared", postgresql_where=text("shared")),
    )


class JobBatch(UUIDPrimaryKey, Timestamps, Base):
    """The parent of a federated batch: one input set sent to several targets. Its children are
    the jobs with ``batch_id`` = its id; its status and progress are derived from them on read
    (see :mod:`job_processor.batches.service`), so they can never disagree."""

    __tablename__ = "job_batches"

    owner_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    input_file_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default=text("'{}'")
    )
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_job_batches_owner_created", "owner_id", "created_at", "id"),
        UniqueConstraint("owner_id", "idempotency_key"),
    )


class ScheduledJob(UUIDPrimaryKey, Timestamps, Base):
    """A template run with given files once at ``run_at`` or on a cron expression.

    ``next_run_at`` is the next occurrence to fire (None: nothing left). Replicas claim due rows
    with ``FOR UPDATE SKIP LOCKED`` and, in the same transaction, create the job, record the
    occurrence (unique per schedule and time) and move ``next_run_at`` on: an occurrence is fired
    by exactly one replica."""

    __tablename__ = "scheduled_jobs"

    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("job_templates.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    input_file_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_job_id: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    run_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_scheduled_jobs_due", "next_run_at", postgresql_where=text("enabled")),
    )


class ScheduledJobRun(UUIDPrimaryKey, Base):
    """One fired occurrence: the job it created, or why none was."""

    __tablename__ = "scheduled_job_runs"

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scheduled_jobs.id", ondelete="CASCADE")
    )
    occurrence_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[uuid.UUID | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )

    __table_args__ = (UniqueConstraint("schedule_id", "occurrence_at"),)
