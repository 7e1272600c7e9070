"""Every query on the audit log. Newest first, keyset-paginated on (occurred_at, id)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.pagination import CursorCodec, PageParams, paginate
from user_service.audit.schemas import AuditFilters
from user_service.models import AuditEvent


def listing(filters: AuditFilters) -> Select[Any]:
    stmt = select(AuditEvent)
    if filters.action:
        if filters.action.endswith("*"):
            prefix = filters.action[:-1].replace("\\", "\\\\").replace("%", r"\%")
            stmt = stmt.where(AuditEvent.action.like(prefix.replace("_", r"\_") + "%"))
        else:
            stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.outcome:
        stmt = stmt.where(AuditEvent.outcome == filters.outcome)
    if filters.actor_id:
        stmt = stmt.where(AuditEvent.actor_id == filters.actor_id)
    if filters.target_id:
        stmt = stmt.where(AuditEvent.target_id == filters.target_id)
    if filters.user_id:
        stmt = involving(stmt, filters.user_id)
    if filters.source_service:
        stmt = stmt.where(AuditEvent.source_service == filters.source_service)
    if filters.since:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return stmt


def involving(stmt: Select[Any], user_id: uuid.UUID) -> Select[Any]:
    """Entries where the user acted or was acted upon."""
    uid = str(user_id)
    return stmt.where(
        or_(
            (AuditEvent.actor_type == "user") & (AuditEvent.actor_id == uid),
            (AuditEvent.target_type == "user") & (AuditEvent.target_id == uid),
        )
    )


async def newest_first(
    session: AsyncSession, stmt: Select[Any], params: PageParams, codec: CursorCodec
) -> tuple[list[AuditEvent], str | None]:
    """One page of the audit log, newest first (an audit log reads back in time)."""
    return await paginate(
        session,
        stmt,
        order_by=[AuditEvent.occurred_at, AuditEvent.id],
        params=params,
        codec=codec,
        descending=True,
    )
