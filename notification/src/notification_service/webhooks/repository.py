"""Every query on webhook endpoints and deliveries."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import WebhookDelivery, WebhookEndpoint


async def owned(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    found = await session.get(WebhookEndpoint, endpoint_id)
    return found if found is not None and found.user_id == user_id else None


def endpoints(user_id: uuid.UUID) -> Select[Any]:
    return select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)


async def active_endpoints(session: AsyncSession, user_id: uuid.UUID) -> list[WebhookEndpoint]:
    result = await session.scalars(
        endpoints(user_id).where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)
    )
    return list(result.all())


async def count(session: AsyncSession, user_id: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
    )
    return int(total or 0)


def deliveries(endpoint_id: uuid.UUID) -> Select[Any]:
    return select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)


async def insert_delivery(session: AsyncSession, values: dict[str, Any]) -> None:
    """A delivery of one event to one endpoint (once per pair)."""
    await session.execute(
        insert(WebhookDelivery)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
    )
