"""Login throttling: an account locks after repeated failures; so does a noisy client address.

Keys: ``user:<id>`` for an existing account, ``name:<sha256 of the identifier>`` when nothing
matches (so an unknown name locks exactly like a real one and the answer reveals nothing), and
``ip:<address>`` for the client.

The account key is *reserved* before the password is checked: one atomic upsert counts the
attempt and, at the limit, sets the lock; an attempt that finds the key locked is refused
without a password check. So a burst of parallel guesses gets no more than the limit through.
A success clears the account key. The address key counts failures only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from user_service.models import LoginThrottle, User

_ATTEMPT = text(
    """
    INSERT INTO login_throttles AS t (key, failures, window_started_at, locked_until)
    VALUES (:key, 1, :now, CASE WHEN 1 >= :max THEN CAST(:lock_end AS timestamptz) END)
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN t.window_started_at <= :window_floor OR t.locked_until <= :now
                      THEN 1 ELSE t.failures + 1 END,
      window_started_at = CASE WHEN t.window_started_at <= :window_floor OR t.locked_until <= :now
                               THEN CAST(:now AS timestamptz) ELSE t.window_started_at END,
      locked_until = CASE WHEN (CASE WHEN t.window_started_at <= :window_floor
                                       OR t.locked_until <= :now
                                     THEN 1 ELSE t.failures + 1 END) >= :max
                          THEN CAST(:lock_end AS timestamptz) END
    WHERE t.locked_until IS NULL OR t.locked_until <= :now
    RETURNING failures, locked_until
    """
)


@dataclass(frozen=True)
class Attempt:
    """The outcome of counting one attempt on a key."""

    failures: int
    locked_until: datetime | None
    refused: bool  # the key was already locked: the attempt must not go ahead

    @property
    def just_locked(self) -> bool:
        return not self.refused and self.locked_until is not None


def account_key(user: User) -> str:
    return f"user:{user.id}"


def name_key(login: str) -> str:
    return "name:" + hashlib.sha256(login.strip().lower().encode()).hexdigest()


def address_key(ip: str) -> str:
    return f"ip:{ip}"


async def count(session: AsyncSession, key: str, *, limit: int, lockout_seconds: int) -> Attempt:
    """Count one attempt on ``key``; at ``limit`` the key locks for ``lockout_seconds``."""
    now = utcnow()
    lockout = timedelta(seconds=lockout_seconds)
    row = (
        await session.execute(
            _ATTEMPT,
            {
                "key": key,
                "now": now,
                "max": limit,
                "lock_end": now + lockout,
                "window_floor": now - lockout,
            },
        )
    ).one_or_none()
    if row is None:
        return Attempt(failures=limit, locked_until=await locked_until(session, key), refused=True)
    return Attempt(failures=row.failures, locked_until=row.locked_until, refused=False)


async def locked_until(session: AsyncSession, key: str) -> datetime | None:
    """When ``key``'s lock ends, or None when it is not locked."""
    until = await session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.key == key))
    return until if until is not None and until > utcnow() else None


async def clear(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
