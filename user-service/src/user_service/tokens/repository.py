"""Every query on API tokens."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from user_service.models import ApiToken


async def owned(session: AsyncSession, user_id: uuid.UUID, token_id: uuid.UUID) -> ApiToken | None:
    token = await session.get(ApiToken, token_id)
    return token if token is not None and token.user_id == user_id else None


async def by_hash(session: AsyncSession, token_hash: str) -> ApiToken | None:
    result = await session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash))
    return result.one_or_none()


async def listing(
    session: AsyncSession, user_id: uuid.UUID, *, include_revoked: bool
) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user_id)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    result = await session.scalars(stmt.order_by(ApiToken.created_at.desc(), ApiToken.id))
    return list(result.all())


async def live_ids(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of the user's tokens that are neither revoked nor expired."""
    result = await session.scalars(
        select(ApiToken.id).where(
            ApiToken.user_id == user_id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > utcnow(),
        )
    )
    return list(result.all())


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Revoke every API token of the user not yet revoked; their ids (to announce)."""
    result = await session.scalars(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiToken.id)
    )
    return list(result.all())
