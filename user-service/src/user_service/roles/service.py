"""What a user may do (roles -> permissions), and granting or revoking roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.permissions import Role
from fedimpute_shared.problems import Conflict, NotFound, Unprocessable
from user_service.audit import service as audit
from user_service.audit.actions import Action
from user_service.models import RoleGrant, User
from user_service.request_meta import RequestMeta
from user_service.roles import repository
from user_service.roles.schemas import GrantIn


@dataclass(frozen=True)
class Access:
    """What goes into an access token: platform-wide roles and their permissions, and the
    roles held for single services only (``service_roles``: service id -> role names)."""

    roles: frozenset[str]
    scopes: frozenset[str]
    service_roles: dict[str, list[str]] = field(default_factory=dict)


async def effective_access(session: AsyncSession, user_id: uuid.UUID) -> Access:
    rows = await repository.live_grants_with_permissions(session, user_id)
    roles = frozenset(row.role_name for row in rows if row.service_id is None)
    scopes = frozenset(row.permission for row in rows if row.permission is not None)
    per_service: dict[str, list[str]] = {}
    for row in rows:
        if row.service_id is not None:
            per_service.setdefault(str(row.service_id), []).append(row.role_name)
    return Access(roles=roles, scopes=scopes, service_roles=per_service)


async def add_grant(
    session: AsyncSession,
    user: User,
    role: str,
    *,
    service_id: uuid.UUID | None = None,
    granted_by: uuid.UUID | None = None,
) -> RoleGrant:
    grant = RoleGrant(
        user_id=user.id,
        role_name=role,
        service_id=service_id,
        granted_by=granted_by,
    )
    session.add(grant)
    return grant


async def grant_role(
    session: AsyncSession, user: User, body: GrantIn, *, admin_id: uuid.UUID, meta: RequestMeta
) -> RoleGrant:
    if not await repository.role_exists(session, body.role):
        raise Unprocessable(f"there is no role {body.role!r}")
    if await repository.find_grant(session, user.id, body.role, body.service_id):
        raise Conflict(f"the user already holds {body.role!r} there; revoke it first")
    grant = await add_grant(
        session, user, body.role, service_id=body.service_id, granted_by=admin_id
    )
    grant.expires_at = body.expires_at
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"the user already holds {body.role!r} there") from None
    await audit.record(
        session,
        Action.ROLE_GRANTED,
        actor=audit.Actor.user(admin_id),
        meta=meta,
        target_user=user.id,
        details=_grant_details(grant),
    )
    return grant


async def revoke_role(
    session: AsyncSession,
    user: User,
    grant_id: uuid.UUID,
    *,
    admin_id: uuid.UUID,
    meta: RequestMeta,
) -> RoleGrant:
    grant = await repository.get_grant(session, user.id, grant_id)
    if grant is None:
        raise NotFound("no such role grant for this user")
    if grant.role_name == Role.ADMIN and grant.service_id is None:
        await ensure_other_admins(session, user)
    await session.delete(grant)
    await session.flush()
    await audit.record(
        session,
        Action.ROLE_REVOKED,
        actor=audit.Actor.user(admin_id),
        meta=meta,
        target_user=user.id,
        details=_grant_details(grant),
    )
    return grant


async def ensure_other_admins(session: AsyncSession, user: User) -> None:
    """Refuse to remove the last active administrator (nobody could administer afterwards)."""
    admins = await repository.count_live_admins(session, lock=True)
    holds = any(
        g.role_name == Role.ADMIN and g.service_id is None
        for g in await repository.live_grants(session, user.id)
    )
    if user.is_active and holds and admins <= 1:
        raise Conflict("this is the last active administrator; make another admin first")


def _grant_details(grant: RoleGrant) -> dict[str, str | None]:
    return {
        "grant_id": str(grant.id),
        "role": grant.role_name,
        "service_id": str(grant.service_id) if grant.service_id else None,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }
