"""Every query on roles, permissions and grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from user_service.models import RoleGrant, RolePermission, RoleRecord, User


def _live() -> ColumnElement[bool]:
    return or_(RoleGrant.expires_at.is_(None), RoleGrant.expires_at > utcnow())


async def live_grants(session: AsyncSession, user_id: uuid.UUID) -> list[RoleGrant]:
    """The user's grants that have not expired."""
    result = await session.scalars(
        select(RoleGrant)
        .where(RoleGrant.user_id == user_id, _live())
        .order_by(RoleGrant.created_at, RoleGrant.id)
    )
    return list(result.all())


async def live_grants_with_permissions(session: AsyncSession, user_id: uuid.UUID) -> list[Any]:
    """The user's live grants, a global grant once per permission of its role (``permission``
    null when it has none), a service's once (``permission`` null): one query for
    :func:`~user_service.roles.service.effective_access`, asked on every ``GET /users/me``."""
    global_grant = and_(
        RolePermission.role_name == RoleGrant.role_name, RoleGrant.service_id.is_(None)
    )
    result = await session.execute(
        select(
            RoleGrant.role_name,
            RoleGrant.service_id,
            RolePermission.permission_name.label("permission"),
        )
        .outerjoin(RolePermission, global_grant)
        .where(RoleGrant.user_id == user_id, _live())
        .order_by(RoleGrant.created_at, RoleGrant.id)
    )
    return list(result.all())


async def all_grants(session: AsyncSession, user_id: uuid.UUID) -> list[RoleGrant]:
    result = await session.scalars(
        select(RoleGrant)
        .where(RoleGrant.user_id == user_id)
        .order_by(RoleGrant.created_at, RoleGrant.id)
    )
    return list(result.all())


async def roles_with_permissions(session: AsyncSession) -> list[tuple[RoleRecord, list[str]]]:
    roles = list((await session.scalars(select(RoleRecord).order_by(RoleRecord.name))).all())
    pairs = (await session.execute(select(RolePermission))).scalars().all()
    by_role: dict[str, list[str]] = {}
    for pair in pairs:
        by_role.setdefault(pair.role_name, []).append(pair.permission_name)
    return [(role, sorted(by_role.get(role.name, []))) for role in roles]


async def role_exists(session: AsyncSession, name: str) -> bool:
    return await session.get(RoleRecord, name) is not None


async def get_grant(
    session: AsyncSession, user_id: uuid.UUID, grant_id: uuid.UUID
) -> RoleGrant | None:
    grant = await session.get(RoleGrant, grant_id)
    return grant if grant is not None and grant.user_id == user_id else None


async def find_grant(
    session: AsyncSession, user_id: uuid.UUID, role: str, service_id: uuid.UUID | None
) -> RoleGrant | None:
    service_match = (
        RoleGrant.service_id.is_(None) if service_id is None else RoleGrant.service_id == service_id
    )
    result = await session.scalars(
        select(RoleGrant).where(
            RoleGrant.user_id == user_id, RoleGrant.role_name == role, service_match
        )
    )
    return result.one_or_none()


async def count_live_admins(session: AsyncSession, *, lock: bool = False) -> int:
    """Active users holding a platform-wide, unexpired admin grant."""
    stmt = (
        select(RoleGrant.id)
        .join(User, User.id == RoleGrant.user_id)
        .where(
            RoleGrant.role_name == "admin",
            RoleGrant.service_id.is_(None),
            _live(),
            User.is_active.is_(True),
        )
    )
    if lock:
        # Serialise concurrent "remove an admin" decisions so two of them cannot both pass.
        stmt = stmt.with_for_update(of=RoleGrant)
    ids = (await session.scalars(stmt)).all()
    return len(ids)


async def holders(session: AsyncSession, roles: Iterable[str], limit: int) -> list[User]:
    """Active users holding one of ``roles`` platform-wide (unexpired), by username."""
    result = await session.scalars(
        select(User)
        .where(
            User.is_active.is_(True),
            User.id.in_(
                select(RoleGrant.user_id).where(
                    RoleGrant.role_name.in_(list(roles)), RoleGrant.service_id.is_(None), _live()
                )
            ),
        )
        .order_by(User.username, User.id)
        .limit(limit)
    )
    return list(result.all())


async def any_admin(session: AsyncSession) -> bool:
    count = await session.scalar(
        select(func.count()).select_from(RoleGrant).where(RoleGrant.role_name == "admin")
    )
    return bool(count)
