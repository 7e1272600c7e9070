"""The job templates API (thin routes)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse

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
from job_processor.jobs.router import IdempotencyKey, accepted
from job_processor.models import JobTemplate
from job_processor.templates import service
from job_processor.templates.schemas import (
    TemplateCreate,
    TemplateOut,
    TemplateSubmit,
    TemplateUpdate,
)

router = APIRouter(prefix="/job-templates", tags=["job-templates"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Save a parameter set (its service, panel and options are checked now)",
    responses=problem_responses(Conflict, Unprocessable, ServiceUnavailable),
)
async def create_template(
    body: TemplateCreate, session: SessionDep, user: Writer, ctx: ContextDep, response: Response
) -> TemplateOut:
    template = await service.create(session, ctx, user, body)
    response.headers["Location"] = f"/job-templates/{template.id}"
    return TemplateOut.model_validate(template)


@router.get("", summary="My templates and the shared ones (newest first)")
async def list_templates(
    session: ReadSessionDep,
    user: Reader,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
    scope: Annotated[
        Literal["all", "mine", "shared"],
        Query(description="mine: my own; shared: every shared one; all: both."),
    ] = "all",
) -> Page[TemplateOut]:
    stmt = service.visible(user)
    if scope == "mine":
        stmt = stmt.where(JobTemplate.owner_id == user.user_id)
    elif scope == "shared":
        stmt = stmt.where(JobTemplate.shared.is_(True))
    rows, cursor = await paginate(
        session,
        stmt,
        order_by=[JobTemplate.created_at, JobTemplate.id],
        params=params,
        codec=codec,
        descending=True,
        plain_rows=True,  # TemplateOut reads columns only
    )
    return Page(items=[TemplateOut.model_validate(t) for t in rows], next_cursor=cursor)


@router.get("/{template_id}", summary="A template", responses=problem_responses(NotFound))
async def get_template(
    template_id: uuid.UUID, session: ReadSessionDep, user: Reader
) -> TemplateOut:
    return TemplateOut.model_validate(await service.find(session, template_id, user))


@router.patch(
    "/{template_id}",
    summary="Change my template",
    responses=problem_responses(NotFound, Forbidden, Conflict, Unprocessable),
)
async def update_template(
    template_id: uuid.UUID,
    body: TemplateUpdate,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
) -> TemplateOut:
    template = await service.find_own(session, template_id, user)
    return TemplateOut.model_validate(await service.update_template(session, ctx, template, body))


@router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete my template (its schedules go with it; its jobs stay)",
    responses=problem_responses(NotFound, Forbidden),
)
async def delete_template(template_id: uuid.UUID, session: SessionDep, user: Writer) -> Response:
    template = await service.find_own(session, template_id, user)
    await session.delete(template)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{template_id}/submit",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a job from the template with these files (every job check applies)",
    responses=problem_responses(NotFound, Unprocessable, TooManyRequests, ServiceUnavailable),
)
async def submit_template(
    template_id: uuid.UUID,
    body: TemplateSubmit,
    session: SessionDep,
    user: Writer,
    ctx: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    template = await service.find(session, template_id, user)
    job, _ = await service.submit(
        session, ctx, user, template, body, idempotency_key=idempotency_key
    )
    return accepted(job)
