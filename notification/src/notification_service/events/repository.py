"""Every query on processed events, told states and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import DeadLetter, ProcessedEvent, ToldState


async def record_processed(session: AsyncSession, event_id: uuid.UUID, event_type: str) -> bool:
    """Record ``event_id`` as processed in the caller's transaction; False if it already was.

    A concurrent transaction recording the same id waits for this one, then finds it: one of
    two consumers handed the same event does the work.
    """
    stmt = (
        insert(ProcessedEvent)
        .values(event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(ProcessedEvent.event_id)
    )
    return (await session.scalar(stmt)) is not None


async def tell_once(
    session: AsyncSession, subject_id: uuid.UUID, topic: str, state: str, occurred_at: datetime
) -> bool:
    """Record that ``subject``'s ``topic`` is now ``state``; False when that is what was last
    told, or when a newer state was told already (an older event arriving late)."""
    table = ToldState.__table__
    values = insert(ToldState).values(
        subject_id=subject_id, topic=topic, state=state, occurred_at=occurred_at
    )
    stmt = values.on_conflict_do_update(
        index_elements=["subject_id", "topic"],
        set_={"state": values.excluded.state, "occurred_at": values.excluded.occurred_at},
        where=(table.c.state != values.excluded.state)
        & (table.c.occurred_at < values.excluded.occurred_at),
    ).returning(table.c.subject_id)
    return (await session.scalar(stmt)) is not None


def dead_letters(event_type: str | None) -> Select[Any]:
    stmt = select(DeadLetter)
    if event_type is not None:
        stmt = stmt.where(DeadLetter.event_type == event_type)
    return stmt
