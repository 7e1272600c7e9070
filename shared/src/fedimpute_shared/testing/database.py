"""A fresh, migrated database for one test run, and per-test isolation by truncation.

Each run creates ``test_<service>_<random>`` (so parallel runs never collide), applies the
service's *real* Alembic migrations (so the migrations themselves are tested), and drops the
database at the end. Between tests every table but ``alembic_version`` is truncated: unlike a
rollback per test, this also isolates background tasks that open their own sessions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fedimpute_shared.migrations import alembic_config, upgrade_to_head_async

__all__ = [
    "migrated_database",
    "public_tables",
    "schema_drift",
    "tables_after_downgrade",
    "truncate_all",
]


async def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def migrated_database(
    admin_url: str, service: str, migrations_dir: Path
) -> AsyncIterator[str]:
    """Create a database, migrate it to head, yield its URL, drop it afterwards."""
    name = f"test_{service.replace('-', '_')}_{secrets.token_hex(4)}"
    await _admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_to_head_async(migrations_dir, url)
        yield url
    finally:
        await _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the public schema except Alembic's bookkeeping."""
    async with engine.begin() as conn:
        rows = await conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        )
        tables = [f'"{row[0]}"' for row in rows]
        if tables:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


async def public_tables(url: str) -> set[str]:
    """The tables of the public schema of the database at ``url``."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def schema_drift(engine: AsyncEngine, metadata: MetaData) -> list[Any]:
    """What differs between the migrated database and the models (empty when they match)."""

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(diff)


async def tables_after_downgrade(admin_url: str, service: str, migrations_dir: Path) -> set[str]:
    """Migrate a fresh database up to head, then down to base; the tables that remain.

    A correct history leaves only ``alembic_version``.
    """
    async with migrated_database(admin_url, f"{service}-down", migrations_dir) as url:
        await asyncio.to_thread(command.downgrade, alembic_config(migrations_dir, url), "base")
        return await public_tables(url)
