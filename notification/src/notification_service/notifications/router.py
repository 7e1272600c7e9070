"""The current user's in-app notifications, and the internal route services create them by."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from fedimpute_shared.auth import ServiceCaller
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import NotFound, problem_responses
from notification_service.dependencies import BrokerDep, Reader, Writer
from notification_service.models import Category, Notification
from notification_service.notifications import repository, service
from notification_service.notifications.schemas import (
    MarkedRead,
    NotificationCreate,
    NotificationOut,
    UnreadCount,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])
internal_router = APIRouter(prefix="/internal/notifications", tags=["internal"])


@router.get("", summary="My notifications, newest first")
async def list_notifications(
    session: ReadSessionDep,
    user: Reader,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
    unread: Annotated[bool | None, Query(description="Only unread (true) or read (false).")] = None,
    category: Category | None = None,
) -> Page[NotificationOut]:
    rows, cursor = await paginate(
        session,
        repository.listing(user.user_id, unread=unread, category=category),
        order_by=[Notification.created_at, Notification.id],
        params=page,
        codec=codec,
        descending=True,
    )
    return Page(items=[service.out(row) for row in rows], next_cursor=cursor)


@router.get("/unread-count", summary="How many of my notifications are unread")
async def unread_count(session: ReadSessionDep, user: Reader) -> UnreadCount:
    return UnreadCount(unread=await repository.unread_count(session, user.user_id))


@router.post("/read-all", summary="Mark all my notifications read")
async def mark_all_read(session: SessionDep, user: Writer) -> MarkedRead:
    return MarkedRead(updated=await service.mark_all_read(session, user.user_id))


@router.get(
    "/{notification_id}", summary="One of my notifications", responses=problem_responses(NotFound)
)
async def get_notification(
    notification_id: uuid.UUID, session: SessionDep, user: Reader
) -> NotificationOut:
    return service.out(await service.get(session, user.user_id, notification_id))


@router.post(
    "/{notification_id}/read", summary="Mark one read", responses=problem_responses(NotFound)
)
async def mark_read(
    notification_id: uuid.UUID, session: SessionDep, user: Writer
) -> NotificationOut:
    return service.out(await service.mark_read(session, user.user_id, notification_id))


@router.delete(
    "/{notification_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete one of my notifications",
    responses=problem_responses(NotFound),
)
async def delete_notification(
    notification_id: uuid.UUID, session: SessionDep, user: Writer
) -> Response:
    await service.delete(session, user.user_id, notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an in-app notification for a user (service tokens only); pushed live",
)
async def create_notification(
    body: NotificationCreate, session: SessionDep, caller: ServiceCaller, broker: BrokerDep
) -> NotificationOut:
    created = await service.create_direct(session, body)
    await session.commit()  # pushed only once it is stored
    await broker.publish_all([service.push_of(created)])
    return service.out(created)
