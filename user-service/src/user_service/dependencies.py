"""Typed dependencies of user-service: settings and lifespan resources, and who is calling.

``Account`` is the *current user's row*, loaded fresh for each request: a token whose user was
deactivated (or deleted) after it was issued is refused here even though it is still signed.
``Admin`` additionally needs the ``admin`` role and the ``users:admin`` scope in the token.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import CurrentUser, Principal, check_role_and_scope
from fedimpute_shared.db import ReadSessionDep, SessionDep

# SessionmakerDep: for writes that must survive a refused request (its own session rolls back):
# audit entries of failed logins, the revocation of a stolen refresh-token family...
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Role, Scope
from fedimpute_shared.problems import Forbidden, NotFound, Unauthorized
from user_service.config import Settings
from user_service.models import User
from user_service.security.keys import Keyring
from user_service.security.passwords import Passwords
from user_service.security.vault_cipher import VaultCipher

SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
KeyringDep = Annotated[Keyring, Depends(from_state("keyring"))]
PasswordsDep = Annotated[Passwords, Depends(from_state("passwords"))]
VaultDep = Annotated[VaultCipher, Depends(from_state("vault"))]
RedisDep = Annotated[Redis | None, Depends(from_state("redis"))]


async def _active(session: AsyncSession, user: Principal) -> User:
    account = await session.get(User, user.user_id)
    if account is None or not account.is_active:
        raise Unauthorized("this account does not exist or is deactivated")
    return account


async def _account(user: CurrentUser, session: SessionDep) -> User:
    return await _active(session, user)


async def _read_account(user: CurrentUser, session: ReadSessionDep) -> User:
    return await _active(session, user)


Account = Annotated[User, Depends(_account)]
ReadAccount = Annotated[User, Depends(_read_account)]
"""``Account`` for handlers that only read (on the request's ``ReadSessionDep`` session: no
BEGIN and COMMIT; a handler that takes ``Account`` takes ``SessionDep``, one session each)."""


def _check_interactive(user: Principal) -> None:
    """The token comes from a login (it names its session, ``sid``), not from an API token
    exchanged at the gateway (``api_token_id``).

    Managing the account and its credentials (API tokens, sessions, profile, password, email)
    is for the person at a login: a leaked script token, whatever its scopes, must not mint a
    longer-lived token, revoke the owner's others or end their sessions (issue 10, item 2).
    """
    if "api_token_id" in user.claims or not isinstance(user.claims.get("sid"), str):
        raise Forbidden(
            "managing the account needs a token from an interactive login, not an API token"
        )


async def _interactive_account(user: CurrentUser, account: Account) -> User:
    _check_interactive(user)
    return account


async def _interactive_read_account(user: CurrentUser, account: ReadAccount) -> User:
    _check_interactive(user)
    return account


InteractiveAccount = Annotated[User, Depends(_interactive_account)]
InteractiveReadAccount = Annotated[User, Depends(_interactive_read_account)]


def _admin_with(scope: Scope) -> Callable[[Principal, User], Awaitable[Principal]]:
    async def check(user: CurrentUser, account: Account) -> Principal:
        check_role_and_scope(user, (Role.ADMIN,), scope)
        return user

    return check


def _scoped(scope: Scope) -> Callable[[Principal, User], Awaitable[User]]:
    async def check(user: CurrentUser, account: Account) -> User:
        if not user.has_scope(scope):
            raise Forbidden(f"this token lacks the scope {scope}")
        return account

    return check


Admin = Annotated[Principal, Depends(_admin_with(Scope.USERS_ADMIN))]
AuditReader = Annotated[Principal, Depends(_admin_with(Scope.AUDIT_READ))]
CredentialReader = Annotated[User, Depends(_scoped(Scope.CREDENTIALS_READ))]
CredentialWriter = Annotated[User, Depends(_scoped(Scope.CREDENTIALS_WRITE))]


async def _target_user(user_id: uuid.UUID, session: SessionDep, admin: Admin) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


TargetUser = Annotated[User, Depends(_target_user)]
"""The user named by the path's ``user_id``, for an admin (404 when there is none)."""
