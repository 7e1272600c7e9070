"""Login: credentials checked against argon2id hashes, with lockout that reveals nothing and
that no anonymous caller can turn against an account's owner (``auth/throttle.py``).

Every way a login can fail for a wrong name or password gives the same 401 after the same
amount of work (an unknown name is checked against a dummy hash); a locked key gives the same
429 whether or not an account stands behind it. Refusals are audited in their own transaction.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import UserAccountUnlockRequested
from fedimpute_shared.problems import BadRequest, Forbidden, TooManyRequests, Unauthorized
from user_service.accounts import repository as accounts
from user_service.accounts.mail import new_one_time_token, send_account_mail
from user_service.accounts.schemas import LoginIn
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.auth import throttle
from user_service.config import Settings
from user_service.models import TokenPurpose, User
from user_service.request_meta import RequestMeta
from user_service.security.keys import Keyring
from user_service.security.opaque import hash_secret
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
    keys = throttle.login_keys(user, body.login, meta.address_bucket)
    async with session_scope(sessionmaker) as side:
        locked, attempt = await _reserve(side, keys, settings)
        if locked:
            await _audit(side, user, meta, Outcome.DENIED, reason="locked", login=body.login)
    if locked:
        raise _locked(locked)
    if not await passwords.verify(user.password_hash if user else None, body.password):
        await _record_failure(sessionmaker, user, keys, attempt, settings, meta, body.login)
        raise Unauthorized(BAD_CREDENTIALS)
    assert user is not None  # a verified password belongs to an account
    if not user.is_active:
        await _record_refusal(sessionmaker, user, meta, "deactivated")
        raise Forbidden("this account is deactivated; contact an administrator")
    return await _succeed(session, user, keys, passwords, keyring, settings, meta, body.password)


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
    keys = throttle.login_keys(user, user.username, meta.address_bucket)
    async with session_scope(sessionmaker) as side:
        locked, attempt = await _reserve(side, keys, settings)
    if locked:
        raise _locked(locked)
    if not await passwords.verify(user.password_hash, password):
        await _record_failure(
            sessionmaker, user, keys, attempt, settings, meta, user.username, "wrong_password"
        )
        raise Forbidden("the current password is wrong")
    async with session_scope(sessionmaker) as side:
        await throttle.clear(side, keys.pair)


async def _reserve(
    side: AsyncSession, keys: throttle.LoginKeys, settings: Settings
) -> tuple[datetime | None, throttle.Attempt | None]:
    """When the attempt must be refused (a lock on the address, the account or the pair) and,
    when it may go ahead, the pair key's reserved attempt."""
    locked = await throttle.locked_until(side, keys.address) if keys.address else None
    locked = locked or await throttle.locked_until(side, keys.account)
    if locked:
        return locked, None
    attempt = await throttle.count(
        side,
        keys.pair,
        limit=settings.login_max_failures,
        lockout_seconds=settings.login_lockout_seconds,
    )
    return (attempt.locked_until if attempt.refused else None), attempt


async def _succeed(
    session: AsyncSession,
    user: User,
    keys: throttle.LoginKeys,
    passwords: Passwords,
    keyring: Keyring,
    settings: Settings,
    meta: RequestMeta,
    password: str,
) -> sessions.TokenPair:
    await throttle.clear(session, keys.pair)
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
    keys: throttle.LoginKeys,
    attempt: throttle.Attempt | None,
    settings: Settings,
    meta: RequestMeta,
    login: str,
    reason: str = "bad_credentials",
) -> None:
    async with session_scope(sessionmaker) as side:
        if keys.address:
            await throttle.count(
                side,
                keys.address,
                limit=settings.login_ip_max_failures,
                lockout_seconds=settings.login_lockout_seconds,
            )
        ceiling = await throttle.count(
            side,
            keys.account,
            limit=settings.login_account_max_failures,
            lockout_seconds=settings.login_lockout_seconds,
        )
        await _audit(side, user, meta, Outcome.FAILURE, reason=reason, login=login)
        for locked, scope in ((attempt, "address"), (ceiling, "account")):
            if locked is not None and locked.just_locked:
                await audit.record(
                    side,
                    Action.LOCKOUT,
                    actor=audit.SYSTEM,
                    meta=meta,
                    outcome=Outcome.DENIED,
                    target_user=user.id if user else None,
                    details={
                        "login": login[:100],
                        "scope": scope,
                        "locked_until": str(locked.locked_until),
                    },
                )
        if ceiling.just_locked and ceiling.locked_until and user is not None and user.is_active:
            await _offer_unlock(side, user, ceiling.locked_until, settings)


async def _offer_unlock(
    side: AsyncSession, user: User, locked_until: datetime, settings: Settings
) -> None:
    """Email the owner of an account locked for everyone a link that lifts the lock."""
    raw, token = await new_one_time_token(
        side, user, TokenPurpose.ACCOUNT_UNLOCK, settings.account_unlock_ttl_seconds
    )
    await send_account_mail(
        side, settings, UserAccountUnlockRequested, user, raw, token, locked_until=locked_until
    )


async def unlock(session: AsyncSession, raw: str, meta: RequestMeta) -> None:
    """Spend an emailed unlock token: every lock on the account is lifted."""
    token = await accounts.usable_token(session, hash_secret(raw), TokenPurpose.ACCOUNT_UNLOCK)
    user = await session.get(User, token.user_id) if token else None
    if token is None or user is None or not user.is_active:
        raise BadRequest("the link is invalid, expired or already used")
    token.used_at = utcnow()
    await throttle.clear_account(session, user)
    await audit.record(
        session,
        Action.ACCOUNT_UNLOCKED,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
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
