"""The federated batches API (thin routes): ``POST /jobs/batch`` and ``/jobs/batches/...``.

Included before the jobs router so ``/jobs/batches`` is not taken for a job id."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    problem_responses,
)
from job_processor.batches import service
from job_processor.batches.schemas import BatchCreate, BatchOut
from job_processor.dependencies import ContextDep, Reader, Writer
from job_processor.jobs.router import IdempotencyKey
from job_processor.models import JobBatch

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchOut,
    summary="Send one input set to several services/panels: a parent and one job per target",
    responses=problem_responses(Unprocessable, TooManyRequests, ServiceUnavailable, Conflict),
)
async def create_batch(
    body: BatchCreate,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    batch, _ = await service.create(session, ctx, user, body, idempotency_key=idempotency_key)
    children = (await service.children_of(session, [batch.id]))[batch.id]
    return JSONResponse(
        service.out(batch, children).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/jobs/batches/{batch.id}"},
    )


@router.get("/batches", summary="My batches (newest first), each with its children")
async def list_batches(
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[BatchOut]:
    stmt = select(JobBatch).where(JobBatch.owner_id == user.user_id)
    rows, cursor = await paginate(
        session,
        stmt,
        order_by=[JobBatch.created_at, JobBatch.id],
        params=params,
        codec=codec,
        descending=True,
    )
    children = await service.children_of(session, [b.id for b in rows])
    return Page(items=[service.out(b, children[b.id]) for b in rows], next_cursor=cursor)


@router.get(
    "/batches/{batch_id}",
    summary="A batch: its derived status and progress, and its children",
    responses=problem_responses(NotFound),
)
async def get_batch(batch_id: uuid.UUID, session: SessionDep, user: Reader) -> BatchOut:
    batch = await service.find(session, batch_id, user)
    children = (await service.children_of(session, [batch.id]))[batch.id]
    return service.out(batch, children)


@router.post(
    "/batches/{batch_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel the batch: every unfinished child (409 when all have finished)",
    responses=problem_responses(NotFound, Conflict),
)
async def cancel_batch(batch_id: uuid.UUID, session: SessionDep, user: Writer) -> BatchOut:
    batch = await service.find(session, batch_id, user)
    children = await service.cancel(session, batch, user)
    return service.out(batch, children)
