"""Async database plumbing shared by every service.

- :func:`new_metadata` gives each service its own ``MetaData`` with the naming convention that
  keeps constraint names stable in Alembic migrations.
- :class:`UUIDPrimaryKey` and :class:`Timestamps` are mixins for models.
- :func:`create_engine` / :func:`create_sessionmaker` build the engine and session factory the
  lifespan keeps in app state (nothing global).
- :func:`get_session` is the request dependency (``SessionDep``): it commits when the handler
  returns and rolls back when it raises. Logic code never commits; it may ``flush()``.
- :func:`session_scope` gives background tasks the same commit-or-rollback discipline.
- :func:`get_read_session` (``ReadSessionDep``) is the dependency of handlers that only read,
  and :class:`DriverQuery` runs the hottest of those reads straight on asyncpg.
- :func:`advisory_lock` takes a Postgres advisory lock (``lock_key("...")`` names one), so one
  replica of a service does a job at a time.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event, func, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from fedimpute_shared.clock import current_clock

__all__ = [
    "NAMING_CONVENTION",
    "DriverQuery",
    "ReadSessionDep",
    "SessionDep",
    "Timestamps",
    "UUIDPrimaryKey",
    "advisory_lock",
    "create_engine",
    "create_sessionmaker",
    "get_read_session",
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


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_IDLE_SECONDS = 1.0


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """An asyncpg engine whose pool checks a connection that sat idle before handing it out,
    so a restarted Postgres does not fail the next request.

    - Up to ``2 * pool_size`` connections, all kept once opened (opened lazily, as the load
      needs them). Before, ``pool_size`` were kept and as many again opened as overflow and
      closed at once: any burst of more than ``pool_size`` concurrent requests then paid a
      new connection (TCP, TLS probe, authentication) on every other request.
    - Not ``pool_pre_ping``: with asyncpg it costs three round trips (BEGIN, ``;``, ROLLBACK)
      on *every* checkout, more than the request's own query. A connection is pinged only
      after :data:`PING_IDLE_SECONDS` idle (:func:`_ping_when_idle`); a Postgres restart takes
      longer than that, so every connection that predates one is pinged; the last used one
      is handed out first (LIFO), so under load the pool's connections stay warm.
    """
    engine = _create_async_engine(
        url,
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_use_lifo=True,
        **kwargs,
    )
    _ping_when_idle(engine, PING_IDLE_SECONDS)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pool hooks: note when a connection goes back; ping it at checkout if it idled longer
    than ``idle_seconds``; a failed ping makes the pool discard it and take another."""

    @event.listens_for(engine.sync_engine, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at <= idle_seconds:
            return  # new, or in use a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:  # any failure means: not this connection
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


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


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Request dependency for handlers that only read (``ReadSessionDep``): the session's
    connection runs in autocommit, so a request costs its queries' round trips and no BEGIN
    and COMMIT (two round trips, a third of a small list's database time). Under Postgres's
    default READ COMMITTED every statement sees a fresh snapshot inside a transaction too, so
    the reads see what they would have seen. Writing through it is a bug: an ORM flush raises.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        session.info[_READ_ONLY] = True
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


_READ_ONLY = "fedimpute_read_only"


@event.listens_for(Session, "before_flush")
def _refuse_writes_on_read_sessions(session: Session, context: Any, instances: Any) -> None:
    if session.info.get(_READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise RuntimeError("a ReadSessionDep session cannot write; use SessionDep")


@dataclass(frozen=True)
class DriverQuery:
    """A select compiled once to asyncpg's SQL, run on a read session's asyncpg connection.

    For the hottest reads only. ``session.execute`` pays, on every call, the statement's cache
    key, the compiled-cache lookup, the hop into SQLAlchemy's greenlet and its result and ORM
    loading machinery: about 1.5 ms of a 20-row list's CPU (bench/request_cost.py), where
    asyncpg's own ``fetch`` of a prepared statement (asyncpg prepares and keeps it per
    connection) costs a fraction of that. Build the query once per statement *shape* (which
    conditions it has; the values are bound per call by name) and keep it.

    The rows are asyncpg records, with asyncpg's values: no SQLAlchemy type processing (an
    enum column reads as its string, JSON as text), so select plain columns. The values bound
    are sent as they are (a ``StrEnum`` member is its string).
    """

    sql: str
    names: tuple[str, ...]  # the bind parameters' names, in the SQL's $1, $2... order

    @classmethod
    def of(cls, stmt: ClauseElement) -> DriverQuery:
        """Compile ``stmt`` for asyncpg; name every bind parameter (``bindparam("kind")``)."""
        from sqlalchemy.dialects.postgresql.asyncpg import dialect

        compiled = stmt.compile(dialect=dialect())  # type: ignore[no-untyped-call]
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        # A value written into the statement (``col == 5``) or a list expanded at execution
        # (``in_([...])``) would be silently lost here: every value is bound per call.
        valued = [name for name in names if not compiled.binds[name].required]
        if valued or compiled.post_compile_params:
            raise ValueError(f"DriverQuery binds values by name only: {valued or 'IN (...)'}")
        return cls(compiled.string, names)

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any]) -> list[Any]:
        """The rows, on ``session``'s connection, which must be a :data:`ReadSessionDep`'s:
        in autocommit, so running beside SQLAlchemy's transaction bookkeeping is safe."""
        if not session.info.get(_READ_ONLY):
            raise RuntimeError("DriverQuery runs on a ReadSessionDep session only")
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # a checked-out connection has one
        args = [params[name] for name in self.names]
        return list(await driver.fetch(self.sql, *args))


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
"""A read-only request's session (autocommit, see :func:`get_read_session`)."""

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
