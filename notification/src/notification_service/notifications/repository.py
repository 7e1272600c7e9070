"""Every query on in-app notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import Category, Notification


def listing(user_id: uuid.UUID, *, unread: bool | None, category: Category | None) -> Select[Any]:
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    if category is not None:
        stmt = stmt.where(Notification.category == category)
    return stmt


async def owned(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification | None:
    found = await session.get(Notification, notification_id)
    return found if found is not None and found.user_id == user_id else None


async def unread_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> int:
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=at)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def remove(session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def insert_once(session: AsyncSession, values: dict[str, Any]) -> Notification | None:
    """Insert a notification unless one for the same (event, user) exists; the new row."""
    stmt = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id", "user_id"])
        .returning(Notification)
    )
    return (await session.scalars(stmt)).one_or_none()


async def by_event(
    session: AsyncSession, user_id: uuid.UUID, event_id: uuid.UUID | None
) -> Notification | None:
    if event_id is None:
        return None
    return await session.scalar(
        select(Notification).where(
            Notification.user_id == user_id, Notification.event_id == event_id
        )
    )
