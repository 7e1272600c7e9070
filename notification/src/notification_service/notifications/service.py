"""In-app notifications: creating them (from events, or directly for services) and the
reader's operations. Every function takes the owner: another user's notification is a 404."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import NotFound
from notification_service.live.broker import Push
from notification_service.models import Category, Notification
from notification_service.notifications import repository
from notification_service.notifications.schemas import NotificationCreate, NotificationOut


def out(notification: Notification) -> NotificationOut:
    return NotificationOut(
        id=notification.id,
        category=notification.category,
        event_type=notification.event_type,
        title=notification.title,
        body=notification.body,
        link=notification.link,
        data=notification.data,
        read=notification.read_at is not None,
        read_at=notification.read_at,
        created_at=notification.created_at,
    )


def push_of(notification: Notification) -> Push:
    """The live message announcing a new notification to its owner."""
    return Push(
        notification.user_id,
        {"type": "notification", "notification": out(notification).model_dump(mode="json")},
    )


async def create(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    category: Category,
    event_type: str,
    event_id: uuid.UUID | None,
    title: str,
    body: str,
    link: str | None,
    data: dict[str, Any],
) -> Notification | None:
    """A new notification, or None when this event already made one for this user."""
    return await repository.insert_once(
        session,
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "category": category,
            "event_type": event_type,
            "event_id": event_id,
            "title": title,
            "body": body[:2000],
            "link": link,
            "data": data,
            "created_at": utcnow(),
        },
    )


async def create_direct(session: AsyncSession, body: NotificationCreate) -> Notification:
    """A service's own notification (``dedupe_id`` makes a retried call a no-op)."""
    created = await create(
        session,
        user_id=body.user_id,
        category=body.category,
        event_type=body.event_type,
        event_id=body.dedupe_id,
        title=body.title,
        body=body.body,
        link=body.link,
        data={},
    )
    if created is not None:
        return created
    existing = await repository.by_event(session, body.user_id, body.dedupe_id)
    assert existing is not None
    return existing


async def get(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    found = await repository.owned(session, user_id, notification_id)
    if found is None:
        raise NotFound("no such notification")
    return found


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification:
    found = await get(session, user_id, notification_id)
    if found.read_at is None:
        found.read_at = utcnow()
        await session.flush()
    return found


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    return await repository.mark_all_read(session, user_id, utcnow())


async def delete(session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID) -> None:
    if not await repository.remove(session, user_id, notification_id):
        raise NotFound("no such notification")
