"""Every query on users and their one-time tokens."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from user_service.accounts.schemas import UserFilters
from user_service.models import OneTimeToken, RoleGrant, TokenPurpose, User


async def by_username(session: AsyncSession, username: str) -> User | None:
    result = await session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    )
    return result.one_or_none()


async def by_email(session: AsyncSession, normalized_email: str) -> User | None:
    result = await session.scalars(select(User).where(User.email == normalized_email))
    return result.one_or_none()


async def by_login(session: AsyncSession, login: str) -> User | None:
    """A username, or an email address (anything with an '@': usernames cannot hold one)."""
    login = login.strip()
    if "@" in login:
        return await by_email(session, login.lower())
    return await by_username(session, login)


def listing(filters: UserFilters) -> Select[Any]:
    stmt = select(User)
    if filters.q:
        pattern = filters.q.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        stmt = stmt.where(
            (func.lower(User.username).like(pattern + "%")) | (User.email.like(pattern + "%"))
        )
    if filters.is_active is not None:
        stmt = stmt.where(User.is_active.is_(filters.is_active))
    if filters.role:
        stmt = stmt.where(
            User.id.in_(select(RoleGrant.user_id).where(RoleGrant.role_name == filters.role))
        )
    return stmt


async def grants_by_user(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[RoleGrant]]:
    if not user_ids:
        return {}
    result = await session.scalars(
        select(RoleGrant)
        .where(RoleGrant.user_id.in_(user_ids))
        .order_by(RoleGrant.created_at, RoleGrant.id)
    )
    grouped: dict[uuid.UUID, list[RoleGrant]] = {uid: [] for uid in user_ids}
    for grant in result.all():
        grouped[grant.user_id].append(grant)
    return grouped


async def usable_token(
    session: AsyncSession, token_hash: str, purpose: TokenPurpose
) -> OneTimeToken | None:
    """An unused, unexpired token of that purpose (locked: it is about to be spent)."""
    result = await session.scalars(
        select(OneTimeToken)
        .where(
            OneTimeToken.token_hash == token_hash,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.expires_at > utcnow(),
        )
        .with_for_update()
    )
    return result.one_or_none()


async def spend_open_tokens(
    session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose | None
) -> None:
    """Mark every open token of that purpose (of every purpose: None) used: a newer one
    replaces them, or the credentials they were sent against changed."""
    stmt = update(OneTimeToken).where(
        OneTimeToken.user_id == user_id, OneTimeToken.used_at.is_(None)
    )
    if purpose is not None:
        stmt = stmt.where(OneTimeToken.purpose == purpose)
    await session.execute(stmt.values(used_at=utcnow()))
