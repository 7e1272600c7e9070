"""Audit log routes: the admins' query, each user's own entries, and the internal append."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from fedimpute_shared.auth import ServiceCaller
from fedimpute_shared.db import SessionDep, utcnow
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params
from fedimpute_shared.problems import BadRequest, Forbidden, Unprocessable, problem_responses
from user_service.audit import repository
from user_service.audit.actions import is_reserved
from user_service.audit.schemas import AuditAppend, AuditAppended, AuditEventOut, AuditFilters
from user_service.dependencies import Account, AuditReader
from user_service.models import AuditEvent

router = APIRouter(tags=["audit"])
internal_router = APIRouter(prefix="/internal", tags=["internal"])


@router.get(
    "/users/audit-log",
    summary="Query the audit log (admin)",
    responses=problem_responses(BadRequest, Forbidden),
)
async def query_audit_log(
    session: SessionDep,
    admin: AuditReader,
    codec: CodecDep,
    filters: Annotated[AuditFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[AuditEventOut]:
    rows, cursor = await repository.newest_first(
        session, repository.listing(filters), params, codec
    )
    return Page(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/users/me/audit-log",
    summary="My own audit entries (what I did, and what was done to my account)",
    responses=problem_responses(BadRequest),
)
async def my_audit_log(
    session: SessionDep,
    account: Account,
    codec: CodecDep,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[AuditEventOut]:
    stmt = repository.involving(repository.listing(AuditFilters()), account.id)
    rows, cursor = await repository.newest_first(session, stmt, params, codec)
    return Page(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@internal_router.post(
    "/audit-events",
    status_code=status.HTTP_201_CREATED,
    summary="Append an audit entry (any service, with its service token)",
    responses=problem_responses(Unprocessable),
)
async def append_audit_event(
    body: AuditAppend, session: SessionDep, caller: ServiceCaller
) -> AuditAppended:
    """The entry is the caller's statement, recorded as such (issue 10, item 20): its source is
    the service named by the caller's token, its time is ours (a time the caller gives is kept
    in ``details.reported_at``, so an entry cannot be backdated among a user's real ones), and
    user-service's own action names are refused (an entry cannot pass for our record)."""
    if is_reserved(body.action):
        raise Unprocessable(
            f"{body.action!r} is an action only user-service records; use your own prefix",
            field="action",
        )
    details = dict(body.details)
    if body.occurred_at is not None:
        details["reported_at"] = body.occurred_at.isoformat()
    event = AuditEvent(
        **body.model_dump(exclude={"occurred_at", "details"}),
        details=details,
        source_service=caller.service_name or "unknown",
        occurred_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    return AuditAppended(id=event.id)
