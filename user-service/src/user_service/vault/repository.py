"""Every query on the vault's credentials."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from user_service.models import ServiceCredential


async def find(
    session: AsyncSession, user_id: uuid.UUID, service_id: uuid.UUID
) -> ServiceCredential | None:
    result = await session.scalars(
        select(ServiceCredential).where(
            ServiceCredential.user_id == user_id, ServiceCredential.service_id == service_id
        )
    )
    return result.one_or_none()


async def listing(session: AsyncSession, user_id: uuid.UUID) -> list[ServiceCredential]:
    result = await session.scalars(
        select(ServiceCredential)
        .where(ServiceCredential.user_id == user_id)
        .order_by(ServiceCredential.created_at, ServiceCredential.id)
    )
    return list(result.all())


async def not_under_key(session: AsyncSession, key_id: str) -> list[ServiceCredential]:
    """Credentials encrypted under another key than ``key_id``, locked for re-encryption."""
    result = await session.scalars(
        select(ServiceCredential).where(ServiceCredential.key_id != key_id).with_for_update()
    )
    return list(result.all())
