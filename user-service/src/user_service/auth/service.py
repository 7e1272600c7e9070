"""Login: credentials checked against argon2id hashes, with lockout that reveals nothing.

Every way a login can fail for a wrong name or password gives the same 401 after the same
amount of work (an unknown name is checked against a dummy hash); a locked key gives the same
429 whether or not an account stands behind it. Refusals are audited in their own transaction.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.problems import Forbidden, TooManyRequests, Unauthorized
from user_service.accounts import repository as accounts
from user_service.accounts.schemas import LoginIn
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.auth import throttle
from user_service.config import Settings
from user_service.models import User
from user_service.request_meta import RequestMeta
from user_service.security.keys import Keyring
from user_service.security.passwords import Passwords
from user_service.tokens import sessions

BAD_CREDENTIALS = "the username/email or password is wrong"


async def login(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: LoginIn,
    *,
    passwords: Passwords,
    keyring: Keyring,
    settings: Settings,
    meta: RequestMeta,
) -> sessions.TokenPair:
    user = await accounts.by_login(session, body.login)
    key = throttle.account_key(user) if user else throttle.name_key(body.login)
    ip_key = throttle.address_key(meta.address_bucket) if meta.address_bucket else None
    async with session_scope(sessionmaker) as side:
        ip_locked = await throttle.locked_until(side, ip_key) if ip_key else None
        attempt = None if ip_locked else await _reserve(side, key, settings)
        locked = ip_locked or (attempt.locked_until if attempt and attempt.refused else None)
        if locked:
            await _audit(side, user, meta, Outcome.DENIED, reason="locked", login=body.login)
    if locked:
        raise _locked(locked)
    if not await passwords.verify(user.password_hash if user else None, body.password):
        await _record_failure(sessionmaker, user, ip_key, attempt, settings, meta, body.login)
        raise Unauthorized(BAD_CREDENTIALS)
    assert user is not None  # a verified password belongs to an account
    if not user.is_active:
        await _record_refusal(sessionmaker, user, meta, "deactivated")
        raise Forbidden("this account is deactivated; contact an administrator")
    return await _succeed(session, user, key, passwords, keyring, settings, meta, body.password)


async def check_current_password(
    sessionmaker: async_sessionmaker[AsyncSession],
    passwords: Passwords,
    user: User,
    password: str,
    settings: Settings,
    meta: RequestMeta,
) -> None:
    """Re-authentication for a sensitive change (password, email): the same lockout as login,
    so a stolen access token cannot be used to guess the password. 403 when wrong."""
    key = throttle.account_key(user)
    async with session_scope(sessionmaker) as side:
        attempt = await _reserve(side, key, settings)
    if attempt.refused and attempt.locked_until:
        raise _locked(attempt.locked_until)
    if not await passwords.verify(user.password_hash, password):
        await _record_failure(
            sessionmaker, user, None, attempt, settings, meta, user.username, "wrong_password"
        )
        raise Forbidden("the current password is wrong")
    async with session_scope(sessionmaker) as side:
        await throttle.clear(side, key)


async def _reserve(side: AsyncSession, key: str, settings: Settings) -> throttle.Attempt:
    return await throttle.count(
        side, key, limit=settings.login_max_failures, lockout_seconds=settings.login_lockout_seconds
    )


async def _succeed(
    session: AsyncSession,
    user: User,
    key: str,
    passwords: Passwords,
    keyring: Keyring,
    settings: Settings,
    meta: RequestMeta,
    password: str,
) -> sessions.TokenPair:
    await throttle.clear(session, key)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    user.last_login_at = utcnow()
    pair = await sessions.start(session, keyring, settings, user, meta)
    await audit.record(
        session,
        Action.LOGIN,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"session_id": str(pair.session_id)},
    )
    return pair


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User | None,
    ip_key: str | None,
    attempt: throttle.Attempt | None,
    settings: Settings,
    meta: RequestMeta,
    login: str,
    reason: str = "bad_credentials",
) -> None:
    async with session_scope(sessionmaker) as side:
        if ip_key:
            await throttle.count(
                side,
                ip_key,
                limit=settings.login_ip_max_failures,
                lockout_seconds=settings.login_lockout_seconds,
            )
        await _audit(side, user, meta, Outcome.FAILURE, reason=reason, login=login)
        if attempt is not None and attempt.just_locked:
            await audit.record(
                side,
                Action.LOCKOUT,
                actor=audit.SYSTEM,
                meta=meta,
                outcome=Outcome.DENIED,
                target_user=user.id if user else None,
                details={"login": login[:100], "locked_until": str(attempt.locked_until)},
            )


async def _record_refusal(
    sessionmaker: async_sessionmaker[AsyncSession], user: User, meta: RequestMeta, reason: str
) -> None:
    async with session_scope(sessionmaker) as side:
        await _audit(side, user, meta, Outcome.DENIED, reason=reason, login=user.username)


async def _audit(
    side: AsyncSession,
    user: User | None,
    meta: RequestMeta,
    outcome: Outcome,
    *,
    reason: str,
    login: str,
) -> None:
    await audit.record(
        side,
        Action.LOGIN,
        actor=audit.ANONYMOUS,
        meta=meta,
        outcome=outcome,
        target_user=user.id if user else None,
        details={"reason": reason, "login": login[:100]},
    )


def _locked(until: datetime) -> TooManyRequests:
    retry_after = max(1, math.ceil((until - utcnow()).total_seconds()))
    return TooManyRequests(
        "too many failed login attempts; try again later",
        headers={"Retry-After": str(retry_after)},
        retry_after_seconds=retry_after,
    )
