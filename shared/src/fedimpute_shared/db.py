"""Async database plumbing shared by every service.

- :func:`new_metadata` gives each service its own ``MetaData`` with the naming convention that
  keeps constraint names stable in Alembic migrations.
- :class:`UUIDPrimaryKey` and :class:`Timestamps` are mixins for models.
- :func:`create_engine` / :func:`create_sessionmaker` build the engine and session factory the
  lifespan keeps in app state (nothing global).
- :func:`get_session` is the request dependency (``SessionDep``): it commits when the handler
  returns and rolls back when it raises. Logic code never commits; it may ``flush()``.
- :func:`session_scope` gives background tasks the same commit-or-rollback discipline.
- :func:`advisory_lock` takes a Postgres advisory lock (``lock_key("...")`` names one), so one
  replica of a service does a job at a time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, func, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Mapped, mapped_column

from fedimpute_shared.clock import current_clock

__all__ = [
    "NAMING_CONVENTION",
    "SessionDep",
    "Timestamps",
    "UUIDPrimaryKey",
    "advisory_lock",
    "create_engine",
    "create_sessionmaker",
    "get_session",
    "lock_key",
    "new_metadata",
    "session_scope",
    "str_enum",
    "utcnow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A fresh ``MetaData`` with the shared naming convention (one per service)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Timezone-aware now in UTC: the only wall clock the platform reads (a test may replace
    it, see :mod:`fedimpute_shared.clock`)."""
    return current_clock().now()


def str_enum(enum: type[StrEnum], length: int) -> SAEnum:
    """A column type storing a ``StrEnum``'s *values* in a VARCHAR, read back as members.

    VARCHAR rather than a native Postgres enum: adding a value is then a code change, not a
    migration that locks the table.
    """
    return SAEnum(
        enum,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class UUIDPrimaryKey:
    """Mixin: a UUID ``id`` primary key generated in Python (so it is known before flush)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """Mixin: ``created_at``/``updated_at``, timezone-aware.

    Set in Python (so they are readable right after a flush, without a refresh that async code
    cannot do lazily) and defaulted in the database too (for rows written by migrations/SQL).
    """

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
        nullable=False,
    )


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """An asyncpg engine with pre-ping, so a restarted Postgres does not fail the next request."""
    return _create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **kwargs
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the request's commit (for responses).
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on error (for background work)."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Request dependency: one session per request, committed only if the handler succeeds."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with session_scope(sessionmaker) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit (a unique violation
# found only at COMMIT, say) still becomes a proper error response instead of a lost write.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job's name (``"outbox-relay"``)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def advisory_lock(engine: AsyncEngine, key: int) -> AsyncIterator[bool]:
    """Try a session-level advisory lock on a dedicated connection; yields whether we got it.

    Advisory locks are per database, and every service has its own, so a key only has to be
    unique within a service. If the process dies while holding the lock, its connection closes
    and Postgres releases the lock.
    """
    async with engine.connect() as conn:
        acquired = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        await conn.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()
