"""The jobs API (thin routes) and its internal reads for monitoring."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from fedimpute_shared.auth import Principal, require_services
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    problem_responses,
)
from job_processor.dependencies import ContextDep, Reader, Writer
from job_processor.jobs import service
from job_processor.jobs.schemas import (
    HistoryOut,
    JobCreate,
    JobFilters,
    JobOut,
    MessagesOut,
    PreflightOut,
    PreflightRequest,
    ResultsOut,
    RetryRequest,
    StatsOut,
)
from job_processor.models import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])
internal_router = APIRouter(prefix="/internal/jobs", tags=["internal"], include_in_schema=False)
Monitoring = Annotated[Principal, Depends(require_services("monitoring", "api-gateway"))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="The same key and body return the first answer; another body is a 422.",
    ),
]


def _accepted(job: Job) -> JSONResponse:
    body = JobOut.model_validate(job).model_dump(mode="json")
    return JSONResponse(
        body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": f"/jobs/{job.id}"}
    )


accepted = _accepted  # for the routes that create jobs elsewhere (templates, batches)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Submit a job (checked now, sent in the background)",
    responses=problem_responses(Unprocessable, TooManyRequests, ServiceUnavailable, Conflict),
)
async def create_job(
    body: JobCreate,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    job, _ = await service.create(session, ctx, user, body, idempotency_key=idempotency_key)
    return _accepted(job)


@router.post(
    "/preflight",
    summary="Would these files run on these services? Per target: ok or the reasons",
    responses=problem_responses(ServiceUnavailable),
)
async def preflight(body: PreflightRequest, user: Reader, ctx: ContextDep) -> PreflightOut:
    return await service.preflight(ctx, user, body)


@router.get("/stats", summary="Job statistics: mine, or everyone's for admins")
async def get_stats(
    session: ReadSessionDep,
    user: Reader,
    scope: Literal["own", "global"] = "own",
) -> StatsOut:
    if scope == "global" and not service.is_job_admin(user):
        raise Forbidden("global statistics are for administrators")
    owner = None if scope == "global" else user.user_id
    return StatsOut(scope=scope, **await service.stats(session, owner))


@router.get("", summary="List my jobs (newest first)")
async def list_jobs(
    session: ReadSessionDep,
    user: Reader,
    codec: CodecDep,
    filters: Annotated[JobFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[JobOut]:
    owner = user.user_id
    if filters.owner_id is not None and filters.owner_id != user.user_id:
        if not service.is_job_admin(user):
            raise Forbidden("listing another user's jobs is for administrators")
        owner = filters.owner_id
    stmt = select(Job).where(Job.owner_id == owner)
    if filters.status is not None:
        stmt = stmt.where(Job.status == filters.status)
    if filters.service is not None:
        stmt = stmt.where(
            (Job.service_slug == filters.service) | (Job.service_id == _uuid(filters.service))
        )
    if filters.tag is not None:
        stmt = stmt.where(Job.tags.contains([filters.tag]))
    stmt = stmt.where(*service.created_range(filters.created_after, filters.created_before))
    rows, cursor = await paginate(
        session,
        stmt,
        order_by=[Job.created_at, Job.id],
        params=params,
        codec=codec,
        descending=True,
    )
    return Page(items=[JobOut.model_validate(j) for j in rows], next_cursor=cursor)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@router.get("/{job_id}", summary="A job", responses=problem_responses(NotFound))
async def get_job(job_id: uuid.UUID, session: ReadSessionDep, user: Reader) -> JobOut:
    return JobOut.model_validate(await service.find(session, job_id, user))


@router.get(
    "/{job_id}/history", summary="Every status change", responses=problem_responses(NotFound)
)
async def get_history(job_id: uuid.UUID, session: SessionDep, user: Reader) -> list[HistoryOut]:
    job = await service.find(session, job_id, user)
    return [HistoryOut.model_validate(h) for h in await service.history(session, job)]


@router.get(
    "/{job_id}/messages",
    summary="The remote service's step messages and notes",
    responses=problem_responses(NotFound),
)
async def get_messages(job_id: uuid.UUID, session: SessionDep, user: Reader) -> MessagesOut:
    job = await service.find(session, job_id, user)
    return MessagesOut(
        status_message=job.status_message,
        paused_note=job.paused_note,
        remote_state=job.remote_state,
        steps=list(job.remote_messages),
        result_notes=list(job.result_notes),
    )


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a job (409 when it has already finished)",
    responses=problem_responses(NotFound, Conflict),
)
async def cancel_job(job_id: uuid.UUID, session: SessionDep, user: Writer) -> JobOut:
    job = await service.find_for_update(session, job_id, user)
    return JobOut.model_validate(await service.cancel(session, job, user))


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Run a failed or cancelled job again, optionally on another service with its panel",
    responses=problem_responses(NotFound, Conflict, Unprocessable, TooManyRequests),
)
async def retry_job(
    job_id: uuid.UUID,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
    body: RetryRequest | None = None,
) -> JSONResponse:
    job = await service.find(session, job_id, user)
    created = await service.retry(session, ctx, user, job, body.service if body else None)
    return _accepted(created)


@router.get(
    "/{job_id}/results",
    summary="The job's result files (ids in file-manager) and the archive password",
    responses=problem_responses(NotFound),
)
async def get_results(
    job_id: uuid.UUID, session: SessionDep, user: Reader, ctx: ContextDep
) -> ResultsOut:
    job = await service.find(session, job_id, user)
    password = None
    if job.result_password_encrypted and job.owner_id == user.user_id:
        password = ctx.box.open(job.result_password_encrypted, str(job.id))
    return ResultsOut(
        status=job.status,
        result_file_ids=list(job.result_file_ids),
        notes=list(job.result_notes),
        password=password,
    )


# ------------------------------------------------------------------ internal (monitoring)


@internal_router.get("/stats")
async def internal_stats(
    session: SessionDep, caller: Monitoring, owner_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return await service.stats(session, owner_id)


@internal_router.get("/recent")
async def internal_recent(
    session: SessionDep,
    caller: Monitoring,
    owner_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    return await service.recent(session, owner_id, limit)
