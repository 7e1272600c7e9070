"""The job state machine: the allowed transitions in one place, and the one function that moves a
job, storing the transition and its events in the caller's transaction.

    pending -> submitting -> queued -> running -> completed | failed | cancelled
    (and cancelling, from any unfinished state once the remote side may know the job)

Every move writes a ``job_status_history`` row and a ``job.status_changed`` event; a move to a
final state also writes ``job.completed`` / ``job.failed`` / ``job.cancelled``. Because they are
written in the same transaction as the status, an event exists if and only if the move was
committed: a crash before the commit loses neither nor duplicates either.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import (
    Event,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobStatusChanged,
    add_to_outbox,
)
from job_processor.metrics import Transition, note
from job_processor.models import Job, JobStatus, JobStatusHistory, OutboxEvent

PRODUCER = "job-processor"

S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    # Not yet sent: it can be cancelled at once, or fail before submission (no service left).
    S.PENDING: frozenset({S.SUBMITTING, S.CANCELLED, S.FAILED}),
    # Being sent: the answer decides; a cancel while sending waits for the answer (cancelling).
    S.SUBMITTING: frozenset({S.QUEUED, S.RUNNING, S.FAILED, S.CANCELLING, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.CANCELLING, S.CANCELLED}),
    # Back to queued: a WES run that was PAUSED/PREEMPTED and waits again.
    S.RUNNING: frozenset({S.QUEUED, S.COMPLETED, S.FAILED, S.CANCELLING, S.CANCELLED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL: frozenset[JobStatus] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
ACTIVE: frozenset[JobStatus] = frozenset(set(JobStatus) - FINAL)
# Counted against the concurrent-jobs quota: everything not finished.
QUOTA_ACTIVE = ACTIVE


class IllegalTransition(RuntimeError):
    """A move the state machine does not allow (a bug in the caller, never user input)."""


def can_move(current: JobStatus, target: JobStatus) -> bool:
    return target in ALLOWED[current]


async def start(session: AsyncSession, job: Job, message: str | None = None) -> None:
    """Record the creation of ``job`` (status pending): history and ``job.status_changed``."""
    job.status = S.PENDING
    job.status_message = message
    await _record(session, job, None, S.PENDING, message, None)


async def move(
    session: AsyncSession,
    job: Job,
    target: JobStatus,
    *,
    message: str | None = None,
    remote_state: str | None = None,
) -> None:
    """Move ``job`` to ``target`` (in the caller's transaction); raise if not allowed."""
    current = job.status
    if not can_move(current, target):
        raise IllegalTransition(f"job {job.id}: {current.value} -> {target.value}")
    now = utcnow()
    job.status = target
    job.status_message = message
    if target in (S.QUEUED, S.RUNNING) and job.submitted_at is None:
        job.submitted_at = now
    if target is S.RUNNING and job.started_at is None:
        job.started_at = now
    if target in FINAL:
        job.finished_at = now
        job.next_action_at = None
        job.lease_owner = None
        job.lease_expires_at = None
        job.paused_note = None
        if target is S.COMPLETED:
            job.progress = 1.0
        job.queue_position = None
    await _record(session, job, current, target, message, remote_state)


async def _record(
    session: AsyncSession,
    job: Job,
    previous: JobStatus | None,
    target: JobStatus,
    message: str | None,
    remote_state: str | None,
) -> None:
    note(session.info, _transition(job, previous, target))
    session.add(
        JobStatusHistory(
            job_id=job.id,
            from_status=previous.value if previous else None,
            to_status=target.value,
            message=message,
            remote_state=remote_state,
            created_at=utcnow(),
        )
    )
    common = {
        "producer": PRODUCER,
        "job_id": job.id,
        "owner_id": job.owner_id,
        "job_name": job.name,
        "service_id": job.service_id,
        "service_slug": job.service_slug,
        "batch_id": job.batch_id,
    }
    events: list[Event] = [
        JobStatusChanged(
            **common,
            previous_status=previous.value if previous else None,
            status=target.value,
            message=message,
            remote_state=remote_state,
        )
    ]
    finished = job.finished_at or utcnow()
    if target is S.COMPLETED:
        events.append(
            JobCompleted(**common, result_file_ids=list(job.result_file_ids), finished_at=finished)
        )
    elif target is S.FAILED:
        events.append(
            JobFailed(**common, message=message or "the job failed", finished_at=finished)
        )
    elif target is S.CANCELLED:
        events.append(JobCancelled(**common, message=message, finished_at=finished))
    for event in events:
        await add_to_outbox(session, OutboxEvent, event)


def _transition(job: Job, previous: JobStatus | None, target: JobStatus) -> Transition:
    duration = None
    if target in FINAL and job.created_at is not None:
        duration = max(0.0, ((job.finished_at or utcnow()) - job.created_at).total_seconds())
    return Transition(
        service=job.service_slug,
        previous=previous.value if previous else None,
        status=target.value,
        duration_seconds=duration,
    )
