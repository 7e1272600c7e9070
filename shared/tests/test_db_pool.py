"""The connection pool: a connection that sat idle is pinged before it is handed out, so a
restarted Postgres (here: a backend terminated under the pool) does not fail the next request;
one used a moment ago is not (no round trip on a busy pool)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import DBAPIError

from fedimpute_shared import db

from .conftest import Widget


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")))


async def _terminate(engine, pid: int) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.fixture
async def engines(demo_db_url, monkeypatch):
    """The pool under test (one connection) and a second engine that kills its backend."""
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.05)
    pooled = db.create_engine(demo_db_url, pool_size=1)
    killer = db.create_engine(demo_db_url, pool_size=1)
    yield pooled, killer
    await pooled.dispose()
    await killer.dispose()


async def test_an_idle_connection_that_died_is_replaced_before_use(engines):
    pooled, killer = engines
    first = await _backend_pid(pooled)
    await _terminate(killer, first)
    await asyncio.sleep(0.1)  # idle past PING_IDLE_SECONDS
    assert await _backend_pid(pooled) != first  # pinged, found dead, replaced: no error


async def test_a_connection_used_a_moment_ago_is_not_pinged(engines, monkeypatch):
    pooled, killer = engines
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 60)
    pooled = db.create_engine(str(pooled.url.render_as_string(hide_password=False)), pool_size=1)
    try:
        first = await _backend_pid(pooled)
        await _terminate(killer, first)
        await asyncio.sleep(0.1)
        with pytest.raises(DBAPIError):  # not pinged: the dead connection is used
            await _backend_pid(pooled)
    finally:
        await pooled.dispose()


async def test_the_pool_keeps_twice_the_pool_size_and_opens_no_overflow(demo_db_url):
    engine = db.create_engine(demo_db_url, pool_size=3)
    try:
        assert engine.pool.size() == 6
        assert engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- read-only request sessions


async def _read_session(engine):
    request = SimpleNamespace(state=SimpleNamespace(sessionmaker=db.create_sessionmaker(engine)))
    return db.get_read_session(request)  # type: ignore[arg-type]


async def test_a_read_session_runs_each_statement_on_its_own(demo_db_url):
    engine = db.create_engine(demo_db_url, pool_size=1)
    try:
        sessions = await _read_session(engine)
        session = await anext(sessions)
        xid = text("SELECT pg_current_xact_id()::text")
        first, second = await session.scalar(xid), await session.scalar(xid)
        assert first != second  # autocommit: no BEGIN, every statement its own transaction
        await sessions.aclose()
        # the pool gives the connection back in its usual mode: one transaction per session
        async with db.create_sessionmaker(engine)() as normal:
            assert await normal.scalar(xid) == await normal.scalar(xid)
    finally:
        await engine.dispose()


async def test_a_read_session_refuses_an_orm_write(demo_db_url):
    engine = db.create_engine(demo_db_url, pool_size=1)
    try:
        sessions = await _read_session(engine)
        session = await anext(sessions)
        session.add(Widget(name=f"never-{uuid.uuid4()}"))
        with pytest.raises(RuntimeError, match="cannot write"):
            await session.flush()
        await sessions.aclose()
        async with db.create_sessionmaker(engine)() as normal:
            assert await normal.scalar(select(func.count()).select_from(Widget)) is not None
            assert not (
                await normal.scalars(select(Widget).where(Widget.name.like("never-%")))
            ).all()
    finally:
        await engine.dispose()


async def test_a_driver_query_binds_by_name_and_runs_on_read_sessions_only(demo_db_url):
    """``DriverQuery``: compiled once, values bound by their names whatever the SQL's order;
    refused on a transactional session (asyncpg would run it outside that transaction)."""
    from sqlalchemy import bindparam

    run = uuid.uuid4().hex
    names = [f"driver-{run}-{i}" for i in range(3)]
    query = db.DriverQuery.of(
        select(Widget.name)
        .where((Widget.name == bindparam("extra")) | Widget.name.like(bindparam("prefix")))
        .order_by(Widget.name)
        .limit(bindparam("limit"))
    )
    assert query.names == ("extra", "prefix", "limit")
    for valued in (Widget.name == "x", Widget.name.in_(names)):
        with pytest.raises(ValueError, match="by name only"):
            db.DriverQuery.of(select(Widget.id).where(valued))
    prefix = f"driver-{run}-1%"  # the second name
    engine = db.create_engine(demo_db_url, pool_size=1)
    try:
        async with db.session_scope(db.create_sessionmaker(engine)) as writer:
            writer.add_all(Widget(name=name) for name in names)
        sessions = await _read_session(engine)
        session = await anext(sessions)
        rows = await query.fetch(session, {"prefix": prefix, "limit": 5, "extra": names[2]})
        assert [row["name"] for row in rows] == names[1:]
        rows = await query.fetch(session, {"limit": 1, "extra": names[2], "prefix": prefix})
        assert [row["name"] for row in rows] == names[1:2]
        await sessions.aclose()
        async with db.create_sessionmaker(engine)() as normal:
            with pytest.raises(RuntimeError, match="ReadSessionDep"):
                await query.fetch(normal, {"limit": 1, "extra": "", "prefix": ""})
    finally:
        async with db.session_scope(db.create_sessionmaker(engine)) as writer:
            await writer.execute(delete(Widget).where(Widget.name.in_(names)))  # shared table
        await engine.dispose()
