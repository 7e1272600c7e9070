"""Scheduled jobs: when each runs, and the firing that several replicas share.

**Once or repeating**: ``run_at`` fires once; ``cron`` (5 fields, in the schedule's time zone,
parsed by ``cronsim``) fires at each occurrence. ``next_run_at`` always holds the next
occurrence to fire.

**Each occurrence fired once, with any number of replicas**: a replica claims one due schedule
with ``SELECT ... FOR UPDATE SKIP LOCKED`` and, in that same transaction, creates the job,
records the occurrence in ``scheduled_job_runs`` (unique per schedule and time: a second firing
of the same occurrence could not commit) and moves ``next_run_at`` on. Another replica skips the
locked row and, once the first commits, no longer finds it due. A replica killed mid-firing
rolls back everything; the occurrence is still due and another replica fires it.

**Missed occurrences** (every replica down for a while) are not replayed one by one: the
schedule fires once for the latest missed time, and its next run is the first one in the
future.

**What a firing can meet**: the job is created through the template exactly as
``POST /job-templates/{id}/submit`` would, as the schedule's owner (their files, credentials,
quotas). A refusal (a file deleted, a quota reached, a panel withdrawn) is recorded on the run
and in ``last_error``, and the schedule goes on to its next occurrence. Our own upstreams being
unreachable is not the schedule's fault: the same occurrence is tried again after
``schedule_retry_seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.problems import (
    FieldProblem,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    Unprocessable,
)
from job_processor.clients import UpstreamError
from job_processor.jobs import checks
from job_processor.jobs import service as jobs
from job_processor.models import JobTemplate, ScheduledJob, ScheduledJobRun
from job_processor.schedules.schemas import ScheduleCreate, ScheduleUpdate
from job_processor.templates import service as templates
from job_processor.templates.schemas import TemplateSubmit

logger = logging.getLogger(__name__)
_LOOKAHEAD = 10  # occurrences checked for the minimum gap


def _invalid(field: str, message: str, code: str) -> Unprocessable:
    return Unprocessable(
        message,
        errors=[
            FieldProblem(
                pointer=f"#/body/{field}", field=f"body.{field}", message=message, code=code
            )
        ],
    )


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(
            "timezone", f"'{name}' is not a known time zone", "timezone_unknown"
        ) from None


def next_occurrence(cron: str, tz: str, after: datetime) -> datetime:
    """The first occurrence of ``cron`` (in zone ``tz``) strictly after ``after``, in UTC."""
    found = next(CronSim(cron, after.astimezone(zone(tz))))
    return found.astimezone(ZoneInfo("UTC"))


def check_cron(cron: str, tz: str, min_gap: float) -> None:
    """5 fields, valid, and never two runs closer than ``min_gap`` seconds."""
    if len(cron.split()) != 5:
        raise _invalid(
            "cron", "a cron expression has 5 fields: minute hour day month weekday", "cron_invalid"
        )
    try:
        iterator = CronSim(cron, utcnow().astimezone(zone(tz)))
        times = [next(iterator) for _ in range(_LOOKAHEAD)]
    except CronSimError as exc:
        raise _invalid("cron", f"the cron expression is not valid: {exc}", "cron_invalid") from None
    except StopIteration:
        raise _invalid("cron", "the cron expression never fires", "cron_invalid") from None
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    if gaps and min(gaps) < min_gap:
        raise _invalid(
            "cron",
            f"the cron expression runs every {int(min(gaps) // 60)} minutes; "
            f"schedules run at most every {int(min_gap // 60)} minutes",
            "cron_too_frequent",
        )


def _first_run(schedule: ScheduledJob, min_gap: float) -> datetime | None:
    """The next occurrence from now, checking the time or expression."""
    now = utcnow()
    if schedule.cron is not None:
        check_cron(schedule.cron, schedule.timezone, min_gap)
        return next_occurrence(schedule.cron, schedule.timezone, now)
    assert schedule.run_at is not None
    if schedule.run_at <= now:
        raise _invalid("run_at", "run_at is in the past: give a future time", "run_at_past")
    return schedule.run_at


async def _check_files(ctx: jobs.Context, user: Principal, file_ids: list[uuid.UUID]) -> None:
    """The files are the caller's and valid now (they are checked again at each run)."""
    try:
        found = await asyncio.gather(*(ctx.upstreams.files.file(f, user.user_id) for f in file_ids))
    except UpstreamError as exc:
        raise ServiceUnavailable(
            "file-manager cannot be reached to check the files; nothing was stored, try again",
            headers={"Retry-After": "10"},
        ) from exc
    reasons = [
        r for f, meta in zip(file_ids, found, strict=True) for r in checks.check_file(f, meta, None)
    ]
    if reasons:
        raise jobs.reasons_problem(reasons)


async def find(session: AsyncSession, schedule_id: uuid.UUID, user: Principal) -> ScheduledJob:
    schedule = await session.get(ScheduledJob, schedule_id)
    if schedule is None or schedule.owner_id != user.user_id:
        raise NotFound("no such scheduled job")
    return schedule


async def create(
    session: AsyncSession, ctx: jobs.Context, user: Principal, body: ScheduleCreate
) -> ScheduledJob:
    template = await templates.find(session, body.template_id, user)
    schedule = ScheduledJob(
        id=uuid.uuid4(),
        owner_id=user.user_id,
        template_id=template.id,
        name=body.name or template.name,
        input_file_ids=list(body.input_file_ids),
        run_at=body.run_at,
        cron=body.cron,
        timezone=body.timezone,
        enabled=body.enabled,
        run_count=0,
    )
    schedule.next_run_at = _first_run(schedule, ctx.settings.schedule_min_interval_seconds)
    await _check_files(ctx, user, schedule.input_file_ids)
    session.add(schedule)
    await session.flush()
    return schedule


async def update(
    session: AsyncSession,
    ctx: jobs.Context,
    user: Principal,
    schedule: ScheduledJob,
    body: ScheduleUpdate,
) -> ScheduledJob:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("run_at") is not None:
        schedule.cron = None
    if changes.get("cron") is not None:
        schedule.run_at = None
    for key, value in changes.items():
        if value is not None:
            setattr(schedule, key, value)
    if "input_file_ids" in changes:
        await _check_files(ctx, user, schedule.input_file_ids)
    timing = {"run_at", "cron", "timezone", "enabled"}.intersection(changes)
    if timing and schedule.enabled:
        schedule.next_run_at = _first_run(schedule, ctx.settings.schedule_min_interval_seconds)
    schedule.updated_at = utcnow()
    return schedule


async def runs(session: AsyncSession, schedule: ScheduledJob, limit: int) -> list[ScheduledJobRun]:
    rows = await session.scalars(
        select(ScheduledJobRun)
        .where(ScheduledJobRun.schedule_id == schedule.id)
        .order_by(ScheduledJobRun.occurrence_at.desc())
        .limit(limit)
    )
    return list(rows.all())


def owner_principal(owner_id: uuid.UUID) -> Principal:
    """The schedule's owner as the job's creator (their files, credentials and quotas)."""
    return Principal(subject=str(owner_id), token_type="access", roles=frozenset({"researcher"}))


class Scheduler:
    """Fires due schedules; one per replica, run by ``core.tasks.every``."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: jobs.Context) -> None:
        self.sessionmaker = sessionmaker
        self.ctx = ctx

    async def fire_due(self) -> int:
        """Fire what is due, one schedule per transaction; the number of occurrences fired."""
        fired = 0
        seen: list[uuid.UUID] = []
        for _ in range(self.ctx.settings.schedule_batch_size):
            async with session_scope(self.sessionmaker) as session:
                schedule = await self._claim(session, seen)
                if schedule is None:
                    break
                seen.append(schedule.id)
                fired += await self._fire(session, schedule)
        return fired

    async def _claim(self, session: AsyncSession, seen: list[uuid.UUID]) -> ScheduledJob | None:
        stmt = (
            select(ScheduledJob)
            .where(ScheduledJob.enabled.is_(True), ScheduledJob.next_run_at <= utcnow())
            .order_by(ScheduledJob.next_run_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if seen:
            stmt = stmt.where(ScheduledJob.id.not_in(seen))
        return await session.scalar(stmt)

    async def _fire(self, session: AsyncSession, schedule: ScheduledJob) -> int:
        occurrence = schedule.next_run_at
        assert occurrence is not None
        job_id, error = None, None
        try:
            async with session.begin_nested():
                job_id = await self._create_job(session, schedule, occurrence)
        except ServiceUnavailable as exc:
            # Our own upstreams are down: not this occurrence's fault; try it again soon.
            schedule.last_error = exc.detail
            schedule.next_run_at = utcnow() + timedelta(
                seconds=self.ctx.settings.schedule_retry_seconds
            )
            logger.warning("scheduled job postponed", extra={"schedule_id": str(schedule.id)})
            return 0
        except ProblemError as exc:
            error = exc.detail or exc.title or "the job was refused"
        session.add(
            ScheduledJobRun(
                schedule_id=schedule.id, occurrence_at=occurrence, job_id=job_id, error=error
            )
        )
        now = utcnow()
        schedule.last_run_at = now
        schedule.last_job_id = job_id or schedule.last_job_id
        schedule.last_error = error
        schedule.run_count += 1
        schedule.updated_at = now
        schedule.next_run_at = (
            next_occurrence(schedule.cron, schedule.timezone, max(now, occurrence))
            if schedule.cron is not None
            else None
        )
        await session.flush()
        logger.info(
            "scheduled job fired",
            extra={"schedule_id": str(schedule.id), "ok": error is None},
        )
        return 1

    async def _create_job(
        self, session: AsyncSession, schedule: ScheduledJob, occurrence: datetime
    ) -> uuid.UUID:
        template = await session.get(JobTemplate, schedule.template_id)
        if template is None or not (template.shared or template.owner_id == schedule.owner_id):
            raise NotFound("the template is no longer available to the schedule's owner")
        body = TemplateSubmit(
            input_file_ids=list(schedule.input_file_ids),
            name=f"{schedule.name} {occurrence:%Y-%m-%d %H:%M}"[:200],
            tags=["scheduled"],
        )
        user = owner_principal(schedule.owner_id)
        job, _ = await templates.submit(session, self.ctx, user, template, body)
        return job.id
