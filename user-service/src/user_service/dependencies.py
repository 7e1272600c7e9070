"""Typed dependencies of user-service: settings and lifespan resources, and who is calling.

``Account`` is the *current user's row*, loaded fresh for each request: a token whose user was
deactivated (or deleted) after it was issued is refused here even though it is still signed.
``Admin`` additionally needs the ``admin`` role and the ``users:admin`` scope in the token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.auth import CurrentUser, Principal
from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.permissions import Role, Scope
from fedimpute_shared.problems import Forbidden, Unauthorized
from user_service.config import Settings
from user_service.models import User
from user_service.security.keys import Keyring
from user_service.security.passwords import Passwords
from user_service.security.vault_cipher import VaultCipher


async def _settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def _codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.state.cursor_codec
    return codec


async def _keyring(request: Request) -> Keyring:
    keyring: Keyring = request.state.keyring
    return keyring


async def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.state.passwords
    return passwords


async def _vault(request: Request) -> VaultCipher:
    vault: VaultCipher = request.state.vault
    return vault


async def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    return maker


async def _redis(request: Request) -> Redis | None:
    redis: Redis | None = request.state.redis
    return redis


SettingsDep = Annotated[Settings, Depends(_settings)]
CodecDep = Annotated[CursorCodec, Depends(_codec)]
KeyringDep = Annotated[Keyring, Depends(_keyring)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
VaultDep = Annotated[VaultCipher, Depends(_vault)]
# For writes that must survive a refused request (its own session rolls back): audit entries of
# failed logins, the revocation of a stolen refresh-token family...
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
RedisDep = Annotated[Redis | None, Depends(_redis)]


async def _account(user: CurrentUser, session: SessionDep) -> User:
    account = await session.get(User, user.user_id)
    if account is None or not account.is_active:
        raise Unauthorized("this account does not exist or is deactivated")
    return account


Account = Annotated[User, Depends(_account)]


def _admin_with(scope: Scope) -> Callable[[Principal, User], Awaitable[Principal]]:
    async def check(user: CurrentUser, account: Account) -> Principal:
        if not user.has_role(Role.ADMIN):
            raise Forbidden("this action needs the admin role")
        if not user.has_scope(scope):
            raise Forbidden(f"this token lacks the scope {scope}")
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
