"""Jobs: creation with its checks, pre-flight, cancel, retry, reads and statistics.

Functions take a session and never commit (the route's ``SessionDep`` does); every status change
goes through :mod:`job_processor.jobs.states`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from fedimpute_shared.permissions import Role, Scope
from fedimpute_shared.problems import (
    Conflict,
    FieldProblem,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
)
from job_processor.clients import UpstreamError, Upstreams
from job_processor.config import Settings
from job_processor.jobs import checks, states
from job_processor.jobs.checks import Reason
from job_processor.jobs.schemas import (
    JobCreate,
    PreflightOut,
    PreflightRequest,
    PreflightTarget,
    ReasonOut,
    Target,
)
from job_processor.models import IdempotencyKey, Job, JobStatus, JobStatusHistory
from job_processor.passwords import PasswordBox, new_result_password

S = JobStatus


def is_job_admin(user: Principal) -> bool:
    """Other users' jobs are for the admin role *and* a token carrying the admin scope, so an
    admin's narrowly scoped API token sees only its own jobs."""
    return user.has_role(Role.ADMIN) and user.has_scope(Scope.USERS_ADMIN)


@dataclass
class Context:
    settings: Settings
    upstreams: Upstreams
    box: PasswordBox


def _unavailable(exc: UpstreamError) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{exc.service} cannot be reached to check the job; nothing was stored, try again",
        headers={"Retry-After": "10"},
    )


def _problem(reasons: list[Reason]) -> Unprocessable:
    errors = [
        FieldProblem(
            pointer=f"#/body/{(r.field or '').split('[')[0]}",
            field=f"body.{r.field}" if r.field else "body",
            message=r.message,
            code=r.code,
        )
        for r in reasons
    ]
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return Unprocessable(reasons[0].message + more, errors=errors)


# ------------------------------------------------------------------------------ lookups


async def find(session: AsyncSession, job_id: uuid.UUID, user: Principal) -> Job:
    """The job if the caller may see it; another user's job is a 404 like a missing one."""
    job = await session.get(Job, job_id)
    if job is None or (job.owner_id != user.user_id and not is_job_admin(user)):
        raise NotFound("no such job")
    return job


async def find_for_update(session: AsyncSession, job_id: uuid.UUID, user: Principal) -> Job:
    job = await session.scalar(
        select(Job)
        .where(Job.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if job is None or (job.owner_id != user.user_id and not is_job_admin(user)):
        raise NotFound("no such job")
    return job


async def history(session: AsyncSession, job: Job) -> list[JobStatusHistory]:
    rows = await session.scalars(
        select(JobStatusHistory)
        .where(JobStatusHistory.job_id == job.id)
        .order_by(JobStatusHistory.created_at, JobStatusHistory.id)
    )
    return list(rows.all())


# ------------------------------------------------------------------------------ checks


async def _files(
    ctx: Context, user_id: uuid.UUID, file_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any] | None]:
    try:
        found = await asyncio.gather(*(ctx.upstreams.files.file(f, user_id) for f in file_ids))
    except UpstreamError as exc:
        raise _unavailable(exc) from exc
    return dict(zip(file_ids, found, strict=True))


async def _has_credentials(ctx: Context, user_id: uuid.UUID, service: dict[str, Any]) -> bool:
    if not service.get("requires_credentials"):
        return True
    try:
        return (
            await ctx.upstreams.vault.credentials(user_id, uuid.UUID(str(service["id"])))
            is not None
        )
    except UpstreamError as exc:
        raise _unavailable(exc) from exc


async def _service(ctx: Context, ref: str) -> dict[str, Any]:
    try:
        service = await ctx.upstreams.registry.service(ref)
    except UpstreamError as exc:
        raise _unavailable(exc) from exc
    if service is None:
        raise _problem([Reason("service_not_found", f"there is no service '{ref}'", "service")])
    return service


# Public names for the other domains that create jobs the same way (templates, batches).
resolve_service = _service
reasons_problem = _problem


def _hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _limit(by_role: dict[str, int], default: int, user: Principal) -> int:
    values = [v for role, v in by_role.items() if user.has_role(role)]
    return max(values) if values else default


async def _check_quotas(session: AsyncSession, settings: Settings, user: Principal) -> None:
    """Concurrent and monthly limits, under a per-user transaction lock so two requests at once
    cannot both take the last slot."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"jobs:{user.user_id}"}
    )
    active_limit = _limit(settings.max_active_jobs_by_role, settings.max_active_jobs, user)
    active = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == user.user_id, Job.status.in_(states.QUOTA_ACTIVE))
    )
    if (active or 0) >= active_limit:
        raise TooManyRequests(
            f"you have {active} unfinished jobs; the limit is {active_limit} at once: "
            "wait for one to finish or cancel one",
            title="Quota exceeded",
            quota="concurrent_jobs",
            limit=active_limit,
            current=active,
        )
    month_limit = _limit(settings.max_jobs_per_month_by_role, settings.max_jobs_per_month, user)
    now = utcnow()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == user.user_id, Job.created_at >= month_start)
    )
    if (used or 0) >= month_limit:
        raise TooManyRequests(
            f"you have submitted {used} jobs this month; the limit is {month_limit}",
            title="Quota exceeded",
            quota="jobs_per_month",
            limit=month_limit,
            current=used,
        )


# ------------------------------------------------------------------------------ create


async def create(
    session: AsyncSession,
    ctx: Context,
    user: Principal,
    body: JobCreate,
    *,
    idempotency_key: str | None = None,
    retry_of: Job | None = None,
    batch_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
) -> tuple[Job, bool]:
    """Check and store a job (pending; the submitter sends it). Returns (job, created): with an
    ``Idempotency-Key`` seen before and the same body, the first job and False. ``batch_id`` and
    ``template_id`` link a batch's child or a template's job (set before its first event)."""
    digest = _hash(body)
    if idempotency_key is not None:
        earlier = await _idempotent(session, ctx.settings, user, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    if len(body.input_file_ids) > ctx.settings.max_inputs_per_job:
        raise _problem(
            [
                Reason(
                    "too_many_inputs",
                    f"a job takes at most {ctx.settings.max_inputs_per_job} input files",
                    "input_file_ids",
                )
            ]
        )
    if len(set(body.input_file_ids)) != len(body.input_file_ids):
        raise _problem(
            [Reason("duplicate_inputs", "an input file is listed twice", "input_file_ids")]
        )
    service = await _service(ctx, body.service)
    panel, reasons = checks.check_target(
        service,
        body.panel,
        build=body.build,
        phasing=body.phasing.value,
        population=body.population,
        mode=body.mode.value,
    )
    files = await _files(ctx, user.user_id, body.input_file_ids)
    for file_id, found in files.items():
        reasons.extend(checks.check_file(file_id, found, service))
    reasons.extend(checks.check_build_of_files([f for f in files.values() if f], body.build))
    reasons.extend(
        checks.check_credentials(service, await _has_credentials(ctx, user.user_id, service))
    )
    if reasons:
        raise _problem(reasons)
    assert panel is not None  # no reasons: the panel was found
    await _check_quotas(session, ctx.settings, user)

    job = Job(
        id=uuid.uuid4(),
        owner_id=user.user_id,
        name=body.name,
        description=body.description,
        service_id=uuid.UUID(str(service["id"])),
        service_slug=str(service["slug"]),
        service_type=str(service["kind"]),
        panel_id=uuid.UUID(str(panel["id"])),
        panel_slug=str(panel["slug"]),
        panel_remote_id=str(panel["remote_id"]),
        build=body.build,
        phasing=body.phasing,
        population=body.population,
        r2_filter=body.r2_filter,
        mode=body.mode,
        tags=list(dict.fromkeys(body.tags)),
        input_file_ids=list(body.input_file_ids),
        inputs=[
            {
                "file_id": str(file_id),
                "filename": found["filename"],
                "size": found.get("size_bytes"),
                "sha256": (found.get("checksums") or {}).get("sha256"),
            }
            for file_id, found in files.items()
            if found is not None
        ],
        remote_messages=[],
        collected={},
        result_notes=[],
        result_file_ids=[],
        next_action_at=utcnow(),
        retry_of_id=retry_of.id if retry_of else None,
        batch_id=batch_id,
        template_id=template_id,
    )
    if job.service_type == "michigan":
        job.result_password_encrypted = ctx.box.seal(new_result_password(), str(job.id))
    session.add(job)
    message = f"retry of job {retry_of.id}" if retry_of else None
    await states.start(session, job, message)
    await session.flush()
    if idempotency_key is not None:
        try:
            async with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        owner_id=user.user_id,
                        key=idempotency_key,
                        request_hash=digest,
                        job_id=job.id,
                    )
                )
        except IntegrityError:
            # The same key, at the same moment, in another request: it wins, this one stops.
            raise Conflict(
                "a request with this Idempotency-Key is being processed; retry in a moment"
            ) from None
    return job, True


async def _idempotent(
    session: AsyncSession, settings: Settings, user: Principal, key: str, digest: str
) -> Job | None:
    since = utcnow() - timedelta(hours=settings.idempotency_key_hours)
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.owner_id == user.user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at >= since,
        )
    )
    if row is None:
        # An expired key is forgotten, so it can be used again.
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.owner_id == user.user_id, IdempotencyKey.key == key
            )
        )
        return None
    if row.request_hash != digest:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body: "
            "use a new key for a different job",
            title="Idempotency-Key reused",
        )
    return await session.get(Job, row.job_id)


# ------------------------------------------------------------------------------ pre-flight


async def preflight(ctx: Context, user: Principal, body: PreflightRequest) -> PreflightOut:
    """The creation checks, per target, without storing anything; plus health."""
    files = await _files(ctx, user.user_id, body.input_file_ids)
    file_reasons: list[Reason] = []
    for file_id, found in files.items():
        file_reasons.extend(checks.check_file(file_id, found, None))
    file_reasons.extend(checks.check_build_of_files([f for f in files.values() if f], body.build))
    pairs: list[tuple[Target | None, dict[str, Any] | None]] = []
    try:
        if body.targets:
            for t in body.targets:
                pairs.append((t, await ctx.upstreams.registry.service(t.service)))
        else:
            pairs = [(None, s) for s in await ctx.upstreams.registry.active_services()]
    except UpstreamError as exc:
        raise _unavailable(exc) from exc

    out: list[PreflightTarget] = []
    for target, service in pairs:
        if service is None:
            assert target is not None
            reason = Reason(
                "service_not_found", f"there is no service '{target.service}'", "service"
            )
            out.append(_target_out(None, target.service, None, [reason]))
            continue
        common = await _service_reasons(ctx, user, service, files)
        panel_refs = (
            [target.panel]
            if target is not None and target.panel
            else [str(p.get("slug")) for p in service.get("panels") or []]
        )
        if not panel_refs:
            reason = Reason(
                "no_panels", f"{service.get('name')} offers no reference panel", "panel"
            )
            out.append(_target_out(service, str(service["slug"]), None, [*common, reason]))
        for ref in panel_refs:
            _, reasons = checks.check_target(
                service,
                ref,
                build=body.build,
                phasing=body.phasing.value,
                population=body.population,
                mode=body.mode.value,
            )
            out.append(_target_out(service, str(service["slug"]), ref, [*common, *reasons]))
    return PreflightOut(
        targets=out,
        file_reasons=[
            ReasonOut(code=r.code, message=r.message, field=r.field) for r in file_reasons
        ],
    )


async def _service_reasons(
    ctx: Context,
    user: Principal,
    service: dict[str, Any],
    files: dict[uuid.UUID, dict[str, Any] | None],
) -> list[Reason]:
    reasons: list[Reason] = []
    for file_id, found in files.items():
        if found is not None:
            reasons.extend(checks.check_file(file_id, found, service))
    reasons.extend(
        checks.check_credentials(service, await _has_credentials(ctx, user.user_id, service))
    )
    reasons.extend(checks.check_health(service, None))
    return reasons


def _target_out(
    service: dict[str, Any] | None, slug: str, panel: str | None, reasons: list[Reason]
) -> PreflightTarget:
    return PreflightTarget(
        service_id=uuid.UUID(str(service["id"])) if service else None,
        service_slug=slug,
        service_name=service.get("name") if service else None,
        panel=panel,
        ok=not reasons,
        reasons=[ReasonOut(code=r.code, message=r.message, field=r.field) for r in reasons],
    )


# ------------------------------------------------------------------------------ cancel, retry


async def cancel(session: AsyncSession, job: Job, user: Principal) -> Job:
    """Cancel: a job not yet sent ends at once; a sent one waits for the remote (cancelling)."""
    if job.status in states.FINAL:
        raise Conflict(
            f"the job is already {job.status.value}; only an unfinished job can be cancelled",
            job_status=job.status.value,
        )
    who = "its owner" if job.owner_id == user.user_id else "an administrator"
    if job.status is S.PENDING:
        await states.move(
            session, job, S.CANCELLED, message=f"cancelled by {who} before it was sent"
        )
    elif job.status is not S.CANCELLING:
        await states.move(session, job, S.CANCELLING, message=f"cancel requested by {who}")
        job.cancel_sent = False
        job.next_action_at = utcnow()
    return job


async def retry(
    session: AsyncSession, ctx: Context, user: Principal, job: Job, service_ref: str | None
) -> Job:
    """A new job with the same inputs and options (optionally on another service offering the
    same panel); the failed one stays as it was."""
    if job.status not in (S.FAILED, S.CANCELLED):
        raise Conflict(
            f"only a failed or cancelled job can be retried; this one is {job.status.value}",
            job_status=job.status.value,
        )
    panel_ref = job.panel_slug
    if service_ref is not None:
        other = await _service(ctx, service_ref)
        if checks.find_panel(other, job.panel_slug) is None:
            if checks.find_panel(other, job.panel_remote_id) is None:
                raise _problem(
                    [
                        Reason(
                            "panel_not_offered",
                            f"{other.get('name')} does not offer the panel {job.panel_slug}",
                            "service",
                        )
                    ]
                )
            panel_ref = job.panel_remote_id
    body = JobCreate(
        name=job.name,
        description=job.description,
        service=service_ref or str(job.service_id),
        panel=panel_ref,
        input_file_ids=list(job.input_file_ids),
        tags=list(job.tags),
        build=job.build,
        phasing=job.phasing,
        population=job.population,
        r2_filter=job.r2_filter,
        mode=job.mode,
    )
    owner = user if job.owner_id == user.user_id else _owner_principal(job)
    created, _ = await create(session, ctx, owner, body, retry_of=job)
    return created


def _owner_principal(job: Job) -> Principal:
    """An admin retrying someone's job retries it as theirs (their files, quotas, credentials)."""
    return Principal(
        subject=str(job.owner_id), token_type="access", roles=frozenset({"researcher"})
    )


# ------------------------------------------------------------------------------ statistics


async def stats(session: AsyncSession, owner_id: uuid.UUID | None) -> dict[str, Any]:
    """Counts by status, the last 24 h, and per service (the monitoring contract's shape).

    One query grouped by service and status, with the last day's counts as ``FILTER``
    aggregates: everything below is a sum over its rows (five statements before, most of
    the request's CPU)."""
    since = utcnow() - timedelta(hours=24)
    owner = [Job.owner_id == owner_id] if owner_id is not None else []
    rows = await session.execute(
        select(
            Job.service_slug,
            Job.status,
            func.count(),
            func.count().filter(Job.finished_at >= since),
            func.count().filter(Job.submitted_at >= since),
        )
        .where(*owner)
        .group_by(Job.service_slug, Job.status)
    )
    by_status: dict[str, int] = {}
    finished: dict[str, int] = {}
    submitted = 0
    per_service: dict[str, dict[str, int]] = {}
    for slug, status, n, finished_24h, submitted_24h in rows.all():
        name = str(status.value if isinstance(status, JobStatus) else status)
        by_status[name] = by_status.get(name, 0) + n
        finished[name] = finished.get(name, 0) + finished_24h
        submitted += submitted_24h
        entry = per_service.setdefault(slug, {"active": 0, "queued": 0, "failed_24h": 0})
        if status in states.ACTIVE:
            entry["active"] += n
        if status in (S.PENDING, S.SUBMITTING, S.QUEUED):
            entry["queued"] += n
        if status == S.FAILED:
            entry["failed_24h"] += finished_24h
    last_24h = {
        "completed": finished.get("completed", 0),
        "failed": finished.get("failed", 0),
        "cancelled": finished.get("cancelled", 0),
        "submitted": submitted,
    }
    ended = last_24h["completed"] + last_24h["failed"]
    return {
        "by_status": by_status,
        "last_24h": last_24h,
        "success_rate_24h": (last_24h["completed"] / ended) if ended else None,
        "per_service": per_service,
    }


async def recent(
    session: AsyncSession, owner_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(Job).order_by(Job.updated_at.desc(), Job.id.desc()).limit(limit)
    if owner_id is not None:
        stmt = stmt.where(Job.owner_id == owner_id)
    return [
        {
            "id": j.id,
            "name": j.name,
            "status": j.status.value,
            "service_slug": j.service_slug,
            "owner_id": j.owner_id,
            "created_at": j.created_at,
            "updated_at": j.updated_at,
        }
        for j in (await session.scalars(stmt)).all()
    ]


def created_range(after: datetime | None, before: datetime | None) -> list[Any]:
    conditions: list[Any] = []
    if after is not None:
        conditions.append(Job.created_at >= after)
    if before is not None:
        conditions.append(Job.created_at < before)
    return conditions
