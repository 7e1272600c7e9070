"""The current user's account (/users/me...) and the admins' user management (/users/...);
role grants are in ``roles/router.py``.

``me_router`` must be included before ``admin_router``: its static paths (``/users/me``) would
otherwise be taken for a ``/users/{user_id}``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import CurrentUser, Principal, require_services
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.permissions import Role
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unprocessable,
    problem_responses,
)
from user_service.accounts import service
from user_service.accounts.repository import grants_by_user, listing
from user_service.accounts.schemas import (
    AdminUserOut,
    EmailChange,
    MeOut,
    PasswordChange,
    ProfileUpdate,
    UserFilters,
    UserList,
    UserOut,
)
from user_service.dependencies import (
    Admin,
    InteractiveAccount,
    PasswordsDep,
    ReadAccount,
    SettingsDep,
    TargetUser,
)
from user_service.models import RoleGrant, User
from user_service.request_meta import MetaDep
from user_service.roles import repository as roles_repository
from user_service.roles import service as roles
from user_service.roles.schemas import GrantOut
from user_service.tokens.revocation import RevocationsDep

me_router = APIRouter(prefix="/users/me", tags=["account"])
admin_router = APIRouter(prefix="/users", tags=["admin"])
internal_router = APIRouter(prefix="/internal/users", tags=["internal"])

# Services that need a user's contact details (to email them, to label their jobs).
ContactReader = Annotated[Principal, Depends(require_services("notification", "job-processor"))]


async def _me(session: AsyncSession, account: User) -> MeOut:
    access = await roles.effective_access(session, account.id)
    return MeOut(
        **UserOut.model_validate(account).model_dump(),
        roles=sorted(access.roles),
        scopes=sorted(access.scopes),
        service_roles=access.service_roles,
    )


@me_router.get("", summary="My account, roles and permissions")
async def get_me(session: ReadSessionDep, account: ReadAccount) -> MeOut:
    return await _me(session, account)


@me_router.patch("", summary="Change my profile", responses=problem_responses(Unprocessable))
async def update_me(
    body: ProfileUpdate, session: SessionDep, account: InteractiveAccount, meta: MetaDep
) -> MeOut:
    await service.update_profile(session, account, body, meta)
    return await _me(session, account)


@me_router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password (ends my other sessions and every API token)",
    responses=problem_responses(Forbidden, Unprocessable, TooManyRequests),
)
async def change_password(
    body: PasswordChange,
    session: SessionDep,
    account: InteractiveAccount,
    user: CurrentUser,
    passwords: PasswordsDep,
    settings: SettingsDep,
    meta: MetaDep,
    sessionmaker: SessionmakerDep,
    revocations: RevocationsDep,
) -> Response:
    sid = user.claims.get("sid")
    revoked = await service.change_password(
        session,
        account,
        body,
        passwords,
        settings,
        meta,
        sessionmaker=sessionmaker,
        current_session=uuid.UUID(sid) if isinstance(sid, str) else None,
    )
    revocations.tokens(revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.put(
    "/email",
    summary="Change my email address (it must be verified again)",
    responses=problem_responses(Forbidden, Conflict, Unprocessable),
)
async def change_email(
    body: EmailChange,
    session: SessionDep,
    account: InteractiveAccount,
    passwords: PasswordsDep,
    settings: SettingsDep,
    meta: MetaDep,
    sessionmaker: SessionmakerDep,
) -> MeOut:
    await service.change_email(
        session, account, body, passwords, settings, meta, sessionmaker=sessionmaker
    )
    return await _me(session, account)


@me_router.post(
    "/email-verification",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the email verification link again",
    responses=problem_responses(Conflict),
)
async def resend_verification(
    session: SessionDep, account: InteractiveAccount, settings: SettingsDep
) -> dict[str, str]:
    await service.request_email_verification(session, account, settings)
    return {"detail": "a verification link is on its way"}


# ------------------------------------------------------------------ admin


def _admin_view(user: User, grants: list[RoleGrant]) -> AdminUserOut:
    return AdminUserOut(
        **UserOut.model_validate(user).model_dump(),
        grants=[GrantOut.model_validate(g) for g in grants],
        deactivated_at=user.deactivated_at,
    )


@admin_router.get("", summary="List users (admin)")
async def list_users(
    session: SessionDep,
    admin: Admin,
    codec: CodecDep,
    filters: Annotated[UserFilters, Query()],
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[AdminUserOut]:
    rows, cursor = await paginate(
        session, listing(filters), order_by=[User.created_at, User.id], params=params, codec=codec
    )
    grants = await grants_by_user(session, [u.id for u in rows])
    return Page(items=[_admin_view(u, grants[u.id]) for u in rows], next_cursor=cursor)


@admin_router.get("/{user_id}", summary="One user (admin)", responses=problem_responses(NotFound))
async def get_user(session: SessionDep, user: TargetUser) -> AdminUserOut:
    return _admin_view(user, await roles_repository.all_grants(session, user.id))


@admin_router.post(
    "/{user_id}/deactivate",
    summary="Deactivate an account: its sessions end and its tokens stop working (admin)",
    responses=problem_responses(NotFound, Conflict),
)
async def deactivate_user(
    session: SessionDep,
    user: TargetUser,
    admin: Admin,
    meta: MetaDep,
    revocations: RevocationsDep,
) -> AdminUserOut:
    await service.set_active(session, user, False, admin_id=admin.user_id, meta=meta)
    await revocations.user_tokens(session, user.id)
    return _admin_view(user, await roles_repository.all_grants(session, user.id))


@admin_router.post(
    "/{user_id}/activate",
    summary="Reactivate an account (admin)",
    responses=problem_responses(NotFound),
)
async def activate_user(
    session: SessionDep, user: TargetUser, admin: Admin, meta: MetaDep
) -> AdminUserOut:
    await service.set_active(session, user, True, admin_id=admin.user_id, meta=meta)
    return _admin_view(user, await roles_repository.all_grants(session, user.id))


# Who holds a role is read by notification alone (it tells admins about alerts and services).
RoleReader = Annotated[Principal, Depends(require_services("notification"))]
MAX_HOLDERS = 1000


@internal_router.get(
    "",
    summary="Active users holding any of the given roles (notification only)",
    responses=problem_responses(Forbidden),
)
async def internal_role_holders(
    session: SessionDep,
    caller: RoleReader,
    role: Annotated[list[Role], Query(min_length=1, max_length=4)],
) -> UserList:
    users = await roles_repository.holders(session, [str(r) for r in role], MAX_HOLDERS)
    return UserList(items=[UserOut.model_validate(u) for u in users])


@internal_router.get(
    "/{user_id}",
    summary="A user's contact details (notification and job-processor only)",
    responses=problem_responses(NotFound, Forbidden),
)
async def internal_get_user(
    user_id: uuid.UUID, session: SessionDep, caller: ContactReader
) -> UserOut:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return UserOut.model_validate(user)
