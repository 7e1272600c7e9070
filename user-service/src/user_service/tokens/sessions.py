"""Login sessions: a refresh-token family per login, rotated on every use.

Each refresh hands out a new refresh token and marks the presented one used. Presenting a used
token again means two parties hold the same token — one of them stole it — so the whole family
(the session) is revoked at once, and both must log in again. The revocation and its audit entry
are committed in their own transaction: the request itself fails (401) and rolls back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.problems import Unauthorized
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.config import Settings
from user_service.models import AuthSession, RefreshToken, User
from user_service.request_meta import RequestMeta
from user_service.roles.service import effective_access
from user_service.security.keys import Keyring
from user_service.security.opaque import REFRESH_TOKEN_PREFIX, hash_secret, new_secret
from user_service.tokens import issuer

_INVALID = "the refresh token is invalid or expired; log in again"


class RefreshTokenReused(Unauthorized):
    """A spent refresh token came back: its session has been revoked."""


@dataclass(frozen=True)
class TokenPair:
    access: issuer.SignedToken
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID


async def start(
    session: AsyncSession, keyring: Keyring, settings: Settings, user: User, meta: RequestMeta
) -> TokenPair:
    """Open a session for ``user`` (after a successful login) and issue its first tokens."""
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        expires_at=now + timedelta(seconds=settings.session_max_age_seconds),
        last_used_at=now,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    session.add(auth_session)
    await session.flush()
    return await _issue(session, keyring, settings, user, auth_session)


async def rotate(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    presented: str,
    meta: RequestMeta,
) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused token revokes its whole family."""
    token = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_secret(presented))
        .with_for_update()
    )
    if token is None:
        raise Unauthorized(_INVALID)
    if token.used_at is not None:
        await _revoke_stolen_family(sessionmaker, token.session_id, meta)
        raise RefreshTokenReused("this refresh token was already used; the session has been ended")
    auth_session = await session.get(AuthSession, token.session_id)
    now = utcnow()
    if (
        auth_session is None
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
        or token.expires_at <= now
    ):
        raise Unauthorized(_INVALID)
    user = await session.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        raise Unauthorized(_INVALID)
    token.used_at = now
    auth_session.last_used_at = now
    return await _issue(session, keyring, settings, user, auth_session)


async def end_by_refresh_token(session: AsyncSession, presented: str) -> AuthSession | None:
    """Logout: revoke the session the refresh token belongs to (whatever its state)."""
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(presented))
    )
    if token is None:
        return None
    auth_session = await session.get(AuthSession, token.session_id)
    if auth_session is not None and auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        auth_session.revoke_reason = "logout"
    return auth_session


async def live_sessions(session: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    result = await session.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
        .order_by(AuthSession.created_at.desc(), AuthSession.id)
    )
    return list(result.all())


async def end_one(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Revoke one of the user's sessions; False when it is not theirs or not live."""
    auth_session = await session.get(AuthSession, session_id)
    if auth_session is None or auth_session.user_id != user_id or auth_session.revoked_at:
        return False
    auth_session.revoked_at = utcnow()
    auth_session.revoke_reason = "ended_by_user"
    return True


async def end_all(
    session: AsyncSession, user_id: uuid.UUID, reason: str, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke every live session of the user, except ``keep`` (the caller's own session)."""
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoke_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def _issue(
    session: AsyncSession,
    keyring: Keyring,
    settings: Settings,
    user: User,
    auth_session: AuthSession,
) -> TokenPair:
    raw = new_secret(REFRESH_TOKEN_PREFIX)
    lifetime = min(
        timedelta(seconds=settings.refresh_token_ttl_seconds),
        auth_session.expires_at - utcnow(),
    )
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=hash_secret(raw),
            expires_at=utcnow() + lifetime,
        )
    )
    await session.flush()
    access = issuer.access_token(
        keyring,
        settings,
        user.id,
        await effective_access(session, user.id),
        session_id=auth_session.id,
    )
    return TokenPair(
        access=access,
        refresh_token=raw,
        refresh_expires_in=int(lifetime.total_seconds()),
        session_id=auth_session.id,
    )


async def _revoke_stolen_family(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: uuid.UUID, meta: RequestMeta
) -> None:
    async with session_scope(sessionmaker) as side:
        auth_session = await side.get(AuthSession, session_id)
        if auth_session is None:
            return
        if auth_session.revoked_at is None:
            auth_session.revoked_at = utcnow()
            auth_session.revoke_reason = "refresh_token_reused"
        await audit.record(
            side,
            Action.REFRESH_REUSED,
            actor=audit.ANONYMOUS,
            meta=meta,
            outcome=Outcome.DENIED,
            target_user=auth_session.user_id,
            details={"session_id": str(session_id)},
        )
