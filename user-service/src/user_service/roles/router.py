"""Roles: what each role may do, and the admins' grants and revocations of users' roles.

Included before ``accounts.router.admin_router``: ``/users/roles`` is not a ``/users/{user_id}``.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import Conflict, NotFound, Unprocessable, problem_responses
from user_service.dependencies import Admin, TargetUser
from user_service.request_meta import MetaDep
from user_service.roles import repository as roles_repository
from user_service.roles import service as roles
from user_service.roles.schemas import GrantIn, GrantOut, RoleOut
from user_service.tokens.revocation import RevocationsDep

router = APIRouter(prefix="/users", tags=["admin"])


@router.get("/roles", summary="Roles and their permissions (admin)")
async def list_roles(session: SessionDep, admin: Admin) -> list[RoleOut]:
    pairs = await roles_repository.roles_with_permissions(session)
    return [
        RoleOut(name=role.name, description=role.description, permissions=perms)
        for role, perms in pairs
    ]


@router.post(
    "/{user_id}/roles",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a role, optionally for one service and until a date (admin)",
    responses=problem_responses(NotFound, Conflict, Unprocessable),
)
async def grant_role(
    body: GrantIn, session: SessionDep, user: TargetUser, admin: Admin, meta: MetaDep
) -> GrantOut:
    grant = await roles.grant_role(session, user, body, admin_id=admin.user_id, meta=meta)
    return GrantOut.model_validate(grant)


@router.delete(
    "/{user_id}/roles/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a role grant (admin)",
    responses=problem_responses(NotFound, Conflict),
)
async def revoke_role(
    grant_id: uuid.UUID,
    session: SessionDep,
    user: TargetUser,
    admin: Admin,
    meta: MetaDep,
    revocations: RevocationsDep,
) -> Response:
    await roles.revoke_role(session, user, grant_id, admin_id=admin.user_id, meta=meta)
    # Gateways drop the user's cached API-token JWTs, which carry the old scopes.
    await revocations.user_tokens(session, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
