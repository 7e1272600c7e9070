"""Job templates: who sees which, the target checked when saved, and submission through the
jobs' own creation (every check of ``POST /jobs`` applies), counting each use.

Visibility: the owner sees their templates; everyone sees shared ones; another user's private
template is a 404 like a missing one. Only the owner changes or deletes a template (a shared
one someone else tries to change is a 403: they can see it exists).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import Conflict, Forbidden, NotFound
from job_processor.jobs import checks
from job_processor.jobs import service as jobs
from job_processor.jobs.schemas import JobCreate
from job_processor.models import Job, JobTemplate
from job_processor.templates.schemas import TemplateCreate, TemplateSubmit, TemplateUpdate

OPTIONS = ("service", "panel", "build", "phasing", "population", "mode")
NULLABLE = frozenset({"description", "population", "r2_filter"})


def visible(user: Principal) -> Select[Any]:
    """The templates ``user`` may read and submit: theirs and the shared ones."""
    return select(JobTemplate).where(
        or_(JobTemplate.owner_id == user.user_id, JobTemplate.shared.is_(True))
    )


async def find(session: AsyncSession, template_id: uuid.UUID, user: Principal) -> JobTemplate:
    template = await session.get(JobTemplate, template_id)
    if template is None or not (template.shared or template.owner_id == user.user_id):
        raise NotFound("no such job template")
    return template


async def find_own(session: AsyncSession, template_id: uuid.UUID, user: Principal) -> JobTemplate:
    template = await find(session, template_id, user)
    if template.owner_id != user.user_id:
        raise Forbidden("only the owner of a shared template can change or delete it")
    return template


async def check_target(ctx: jobs.Context, values: dict[str, Any]) -> None:
    """The service and panel exist and take these options (files are checked at submission)."""
    service = await jobs.resolve_service(ctx, str(values["service"]))
    _, reasons = checks.check_target(
        service,
        str(values["panel"]),
        build=str(values["build"]),
        phasing=str(values["phasing"]),
        population=values.get("population"),
        mode=str(values["mode"]),
    )
    if reasons:
        raise jobs.reasons_problem(reasons)


async def create(
    session: AsyncSession, ctx: jobs.Context, user: Principal, body: TemplateCreate
) -> JobTemplate:
    values = body.model_dump(mode="json")
    await check_target(ctx, values)
    template = JobTemplate(
        owner_id=user.user_id,
        name=body.name,
        description=body.description,
        shared=body.shared,
        service=body.service,
        panel=body.panel,
        build=body.build,
        phasing=body.phasing,
        population=body.population,
        r2_filter=body.r2_filter,
        mode=body.mode,
        tags=list(dict.fromkeys(body.tags)),
        usage_count=0,
    )
    session.add(template)
    await _flush_unique(session, body.name)
    return template


async def update_template(
    session: AsyncSession,
    ctx: jobs.Context,
    template: JobTemplate,
    body: TemplateUpdate,
) -> JobTemplate:
    changes = {
        k: v
        for k, v in body.model_dump(mode="json", exclude_unset=True).items()
        if v is not None or k in NULLABLE
    }
    if any(key in changes for key in OPTIONS):
        current = {key: getattr(template, key) for key in OPTIONS}
        current = {k: (v.value if hasattr(v, "value") else v) for k, v in current.items()}
        await check_target(ctx, current | changes)
    for key, value in body.model_dump(exclude_unset=True).items():
        if value is None and key not in NULLABLE:
            continue  # null for a required member means "unchanged"
        setattr(template, key, list(dict.fromkeys(value)) if key == "tags" else value)
    template.updated_at = utcnow()
    await _flush_unique(session, template.name)
    return template


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"you already have a template named '{name}'") from None


async def submit(
    session: AsyncSession,
    ctx: jobs.Context,
    user: Principal,
    template: JobTemplate,
    body: TemplateSubmit,
    *,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """A job from the template and the given files, through the jobs' creation and all its
    checks; the template's use is counted (once per job created, not for a replayed key)."""
    request = JobCreate(
        name=body.name or template.name,
        description=body.description if body.description is not None else template.description,
        service=template.service,
        panel=template.panel,
        input_file_ids=list(body.input_file_ids),
        tags=list(dict.fromkeys([*template.tags, *body.tags]))[:20],
        build=template.build,
        phasing=template.phasing,
        population=template.population,
        r2_filter=template.r2_filter,
        mode=template.mode,
    )
    job, created = await jobs.create(
        session, ctx, user, request, idempotency_key=idempotency_key, template_id=template.id
    )
    if created:
        await count_use(session, template.id)
    return job, created


async def count_use(session: AsyncSession, template_id: uuid.UUID) -> None:
    """One more use, counted in the database (two submissions at once both count)."""
    await session.execute(
        update(JobTemplate)
        .where(JobTemplate.id == template_id)
        .values(usage_count=JobTemplate.usage_count + 1, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
