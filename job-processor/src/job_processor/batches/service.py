"""Federated batches: a parent (``job_batches``) and one child job per target, created in one
transaction through the jobs' own creation, so each child passes every check of ``POST /jobs``
(and counts against the quotas) or the whole batch is refused and nothing is stored.

The parent's status is derived from its children on every read (never stored, so it cannot
disagree with them):

1. any child unfinished:
   - ``cancelling`` if the batch was cancelled (the children are winding down);
   - ``pending`` if every unfinished child is still pending or submitting and none has finished;
   - ``running`` otherwise (something was accepted remotely, or some children already ended);
2. every child finished:
   - ``completed`` if all completed; ``cancelled`` if all were cancelled;
   - ``partially_completed`` if some completed and the others failed or were cancelled;
   - ``failed`` if none completed and at least one failed.

Progress is the mean over the children: a finished child (whatever its outcome) counts 1, an
unfinished one its remote progress (0 when the remote does not say).
Cancelling the parent cancels every unfinished child (as ``POST /jobs/{id}/cancel`` would).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import (
    Conflict,
    FieldProblem,
    NotFound,
    TooManyRequests,
    Unprocessable,
)
from job_processor.batches.schemas import BatchCreate, BatchOut, BatchStatus
from job_processor.jobs import service as jobs
from job_processor.jobs import states
from job_processor.jobs.schemas import JobCreate, JobOut
from job_processor.models import Job, JobBatch, JobStatus

S = JobStatus
_EARLY = frozenset({S.PENDING, S.SUBMITTING})


def derive_status(children: Sequence[Job], cancel_requested: bool) -> BatchStatus:
    """The parent's status from its children, by the rules in the module docstring."""
    statuses = [c.status for c in children]
    unfinished = [s for s in statuses if s not in states.FINAL]
    if unfinished:
        if cancel_requested:
            return "cancelling"
        if all(s in _EARLY for s in unfinished) and len(unfinished) == len(statuses):
            return "pending"
        return "running"
    completed = statuses.count(S.COMPLETED)
    if completed == len(statuses):
        return "completed"
    if completed:
        return "partially_completed"
    if S.FAILED in statuses:
        return "failed"
    return "cancelled"


def derive_progress(children: Sequence[Job]) -> float:
    if not children:
        return 0.0
    done = [
        1.0 if c.status in states.FINAL else min(max(c.progress or 0.0, 0.0), 1.0) for c in children
    ]
    return round(sum(done) / len(done), 4)


def out(batch: JobBatch, children: Sequence[Job]) -> BatchOut:
    return BatchOut(
        id=batch.id,
        owner_id=batch.owner_id,
        name=batch.name,
        description=batch.description,
        input_file_ids=list(batch.input_file_ids),
        tags=list(batch.tags),
        status=derive_status(children, batch.cancel_requested_at is not None),
        progress=derive_progress(children),
        counts=dict(Counter(c.status.value for c in children)),
        cancel_requested_at=batch.cancel_requested_at,
        created_at=batch.created_at,
        updated_at=batch.updated_at,
        children=[JobOut.model_validate(c) for c in children],
    )


async def children_of(
    session: AsyncSession, batch_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Job]]:
    found: dict[uuid.UUID, list[Job]] = {b: [] for b in batch_ids}
    if batch_ids:
        rows = await session.scalars(
            select(Job).where(Job.batch_id.in_(batch_ids)).order_by(Job.created_at, Job.id)
        )
        for job in rows.all():
            assert job.batch_id is not None
            found[job.batch_id].append(job)
    return found


async def find(session: AsyncSession, batch_id: uuid.UUID, user: Principal) -> JobBatch:
    """The batch if the caller may see it; another user's batch is a 404 like a missing one."""
    batch = await session.get(JobBatch, batch_id)
    if batch is None or (batch.owner_id != user.user_id and not jobs.is_job_admin(user)):
        raise NotFound("no such batch")
    return batch


def _hash(body: BatchCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _replay(session: AsyncSession, user: Principal, key: str, digest: str) -> JobBatch | None:
    earlier = await session.scalar(
        select(JobBatch).where(JobBatch.owner_id == user.user_id, JobBatch.idempotency_key == key)
    )
    if earlier is not None and earlier.request_hash != digest:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body: "
            "use a new key for a different batch",
            title="Idempotency-Key reused",
        )
    return earlier


def _duplicates(body: BatchCreate) -> None:
    seen: set[tuple[str, str]] = set()
    for i, target in enumerate(body.targets):
        key = (target.service, target.panel)
        if key in seen:
            raise Unprocessable(
                f"target {i} repeats {target.service} / {target.panel}: list each target once",
                errors=[
                    FieldProblem(
                        pointer=f"#/body/targets/{i}",
                        field=f"body.targets.{i}",
                        message="this service and panel are already a target",
                        code="duplicate_target",
                    )
                ],
            )
        seen.add(key)


async def create(
    session: AsyncSession,
    ctx: jobs.Context,
    user: Principal,
    body: BatchCreate,
    *,
    idempotency_key: str | None = None,
) -> tuple[JobBatch, bool]:
    """Store the parent and one checked child per target (all or nothing). Every target's
    problems are reported together, each pointing at ``targets/<i>``."""
    digest = _hash(body)
    if idempotency_key is not None:
        earlier = await _replay(session, user, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    _duplicates(body)
    batch = JobBatch(
        id=uuid.uuid4(),
        owner_id=user.user_id,
        name=body.name,
        description=body.description,
        input_file_ids=list(body.input_file_ids),
        tags=list(dict.fromkeys(body.tags)),
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    session.add(batch)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # The same key, at the same moment, in another request: it wins, this one stops.
        raise Conflict(
            "a request with this Idempotency-Key is being processed; retry in a moment"
        ) from None
    problems: list[FieldProblem] = []
    for i, target in enumerate(body.targets):
        child = JobCreate(
            name=f"{body.name} [{target.service}]"[:200],
            description=body.description,
            service=target.service,
            panel=target.panel,
            input_file_ids=list(body.input_file_ids),
            tags=batch.tags,
            build=body.build,
            phasing=body.phasing,
            population=body.population,
            r2_filter=body.r2_filter,
            mode=body.mode,
        )
        try:
            await jobs.create(session, ctx, user, child, batch_id=batch.id)
        except Unprocessable as exc:
            problems.extend(_at_target(i, target.service, exc))
        except TooManyRequests as exc:
            raise TooManyRequests(
                f"a batch of {len(body.targets)} targets needs {len(body.targets)} job slots; "
                f"{exc.detail}",
                title=exc.title,
                **exc.extra,
            ) from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Unprocessable(problems[0].message + more, errors=problems)
    return batch, True


def _at_target(index: int, service: str, exc: Unprocessable) -> list[FieldProblem]:
    """The child's problems, each pointing into ``targets/<index>`` and naming the service."""
    errors = exc.errors or [
        FieldProblem(pointer="#/body", field="body", message=exc.detail or "", code="invalid")
    ]
    return [
        FieldProblem(
            pointer=f"#/body/targets/{index}/{e.pointer.removeprefix('#/body/')}".rstrip("/"),
            field=f"body.targets.{index}.{e.field.removeprefix('body.')}".rstrip("."),
            message=f"{service}: {e.message}",
            code=e.code,
        )
        for e in errors
    ]


async def cancel(session: AsyncSession, batch: JobBatch, user: Principal) -> list[Job]:
    """Cancel every unfinished child (409 when all have finished)."""
    children = (await children_of(session, [batch.id]))[batch.id]
    unfinished = [c for c in children if c.status not in states.FINAL]
    if not unfinished:
        raise Conflict("every job of this batch has already finished; nothing to cancel")
    for child in unfinished:
        locked = await jobs.find_for_update(session, child.id, user)
        if locked.status not in states.FINAL:
            await jobs.cancel(session, locked, user)
    batch.cancel_requested_at = batch.cancel_requested_at or utcnow()
    batch.updated_at = utcnow()
    return (await children_of(session, [batch.id]))[batch.id]
