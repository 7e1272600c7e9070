"""The scheduled jobs API (thin routes)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import NotFound, ServiceUnavailable, Unprocessable, problem_responses
from job_processor.dependencies import ContextDep, Reader, Writer
from job_processor.models import ScheduledJob
from job_processor.schedules import service
from job_processor.schedules.schemas import RunOut, ScheduleCreate, ScheduleOut, ScheduleUpdate

router = APIRouter(prefix="/scheduled-jobs", tags=["scheduled-jobs"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Run a template with these files once at a time, or on a cron expression",
    responses=problem_responses(NotFound, Unprocessable, ServiceUnavailable),
)
async def create_schedule(
    body: ScheduleCreate, session: SessionDep, user: Writer, ctx: ContextDep, response: Response
) -> ScheduleOut:
    schedule = await service.create(session, ctx, user, body)
    response.headers["Location"] = f"/scheduled-jobs/{schedule.id}"
    return ScheduleOut.model_validate(schedule)


@router.get("", summary="My scheduled jobs (newest first)")
async def list_schedules(
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[ScheduleOut]:
    rows, cursor = await paginate(
        session,
        select(ScheduledJob).where(ScheduledJob.owner_id == user.user_id),
        order_by=[ScheduledJob.created_at, ScheduledJob.id],
        params=params,
        codec=codec,
        descending=True,
    )
    return Page(items=[ScheduleOut.model_validate(s) for s in rows], next_cursor=cursor)


@router.get("/{schedule_id}", summary="A scheduled job", responses=problem_responses(NotFound))
async def get_schedule(schedule_id: uuid.UUID, session: SessionDep, user: Reader) -> ScheduleOut:
    return ScheduleOut.model_validate(await service.find(session, schedule_id, user))


@router.patch(
    "/{schedule_id}",
    summary="Change, pause (enabled=false) or resume a scheduled job",
    responses=problem_responses(NotFound, Unprocessable, ServiceUnavailable),
)
async def update_schedule(
    schedule_id: uuid.UUID,
    body: ScheduleUpdate,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
) -> ScheduleOut:
    schedule = await service.find(session, schedule_id, user)
    return ScheduleOut.model_validate(await service.update(session, ctx, user, schedule, body))


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a scheduled job (the jobs it created stay)",
    responses=problem_responses(NotFound),
)
async def delete_schedule(schedule_id: uuid.UUID, session: SessionDep, user: Writer) -> Response:
    await session.delete(await service.find(session, schedule_id, user))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{schedule_id}/runs",
    summary="The occurrences fired, newest first: the job created or why none was",
    responses=problem_responses(NotFound),
)
async def list_runs(
    schedule_id: uuid.UUID,
    session: SessionDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[RunOut]:
    schedule = await service.find(session, schedule_id, user)
    return [RunOut.model_validate(r) for r in await service.runs(session, schedule, limit)]
