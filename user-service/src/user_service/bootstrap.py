"""The first administrator: from ``python -m user_service create-admin`` or, at start, from
``BOOTSTRAP_ADMIN_USERNAME`` / ``_EMAIL`` / ``_PASSWORD`` when no admin exists yet.

There is never a default password: the operator gives one, and it must pass the password policy.
An existing account is never promoted by bootstrap (whoever registered that name first would
become admin): a clash stops the start with an error instead.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope
from fedimpute_shared.permissions import Role
from fedimpute_shared.problems import ProblemError
from user_service.accounts import service as accounts
from user_service.accounts.schemas import RegisterIn
from user_service.audit import service as audit
from user_service.audit.actions import Action
from user_service.config import Settings
from user_service.models import User
from user_service.request_meta import RequestMeta
from user_service.roles import repository as roles
from user_service.security.passwords import Passwords

logger = logging.getLogger(__name__)

# Serialises bootstrap across replicas starting together (pg_advisory_xact_lock key).
_BOOTSTRAP_LOCK = 0x75736572


class AdminCreationError(RuntimeError):
    """The administrator could not be created; the message says why."""


async def create_admin(
    session: AsyncSession,
    passwords: Passwords,
    settings: Settings,
    *,
    username: str,
    email: str,
    password: str,
) -> User:
    try:
        body = RegisterIn(username=username, email=email, password=password)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise AdminCreationError(problems) from None
    try:
        user = await accounts.register(
            session,
            body,
            passwords,
            settings,
            RequestMeta(ip=None, user_agent=None, request_id=None),
            role=Role.ADMIN,
            email_verified=True,
        )
    except ProblemError as exc:
        raise AdminCreationError(exc.detail or str(exc)) from None
    await audit.record(
        session, Action.ADMIN_CREATED, actor=audit.SYSTEM, meta=None, target_user=user.id
    )
    return user


async def bootstrap_admin(
    sessionmaker: async_sessionmaker[AsyncSession], passwords: Passwords, settings: Settings
) -> User | None:
    """Create the first admin from settings when none exists; None when nothing was done."""
    given = (
        settings.bootstrap_admin_username,
        settings.bootstrap_admin_email,
        settings.bootstrap_admin_password,
    )
    if not any(given):
        return None
    username, email, password = given
    if not (username and email and password):
        raise AdminCreationError(
            "set all of BOOTSTRAP_ADMIN_USERNAME, BOOTSTRAP_ADMIN_EMAIL, BOOTSTRAP_ADMIN_PASSWORD"
        )
    async with session_scope(sessionmaker) as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOTSTRAP_LOCK})
        if await roles.any_admin(session):
            return None
        user = await create_admin(
            session,
            passwords,
            settings,
            username=username,
            email=email,
            password=password.get_secret_value(),
        )
    logger.info("created the first administrator %s", user.username)
    return user
