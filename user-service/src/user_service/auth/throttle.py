"""Login throttling, so that guessing is slow but no anonymous caller can lock an owner out.

Keys (:class:`LoginKeys`): the *account* — ``user:<id>`` for an existing account,
``name:<sha256 of the identifier>`` when nothing matches (so an unknown name locks exactly like a
real one and the answer reveals nothing) —, the account *from one client address*
(``<account>@<hash of the address>``), and the address itself (``ip:<address>``).

- The pair key locks after ``LOGIN_MAX_FAILURES``: a guesser locks the account for themselves
  only; its owner, elsewhere, still logs in (issue 10, item 16). It is *reserved* before the
  password is checked — one atomic upsert counts the attempt and, at the limit, sets the lock;
  an attempt that finds the key locked is refused without a password check — so a burst of
  parallel guesses gets no more than the limit through. A success clears it.
- The account key is a ceiling, ``LOGIN_ACCOUNT_MAX_FAILURES`` failures from all addresses
  together (a distributed guess), that locks the account for everyone; its owner is emailed a
  link that lifts the lock at once (``user.account_unlock_requested``).
- The address key counts failures on any account (password spraying from one address).
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


@dataclass(frozen=True)
class LoginKeys:
    account: str  # the per-account ceiling
    pair: str  # the account from this client address
    address: str | None  # the client address (None when unknown)


def login_keys(user: User | None, login: str, ip: str | None) -> LoginKeys:
    """``ip``: the client's address bucket (``RequestMeta.address_bucket``: an IPv6 /64)."""
    account = account_key(user) if user else name_key(login)
    where = address_key(ip) if ip else "ip:unknown"
    # Hashed: an IPv6 address would overflow the key column; 16 hex digits are plenty.
    pair = f"{account}@{hashlib.sha256(where.encode()).hexdigest()[:16]}"
    return LoginKeys(account=account, pair=pair, address=address_key(ip) if ip else None)


async def clear_account(session: AsyncSession, user: User) -> None:
    """Lift every lock on the account: the ceiling and each address's (a reset, an unlock)."""
    prefix = account_key(user)
    await session.execute(
        delete(LoginThrottle).where(
            (LoginThrottle.key == prefix) | LoginThrottle.key.startswith(prefix + "@")
        )
    )


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
