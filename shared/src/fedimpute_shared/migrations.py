"""Alembic helpers: every service's ``migrations/env.py`` is three lines calling
:func:`run_migrations`, and tools (tests, the launcher) upgrade a database with
:func:`upgrade_to_head`.

The database URL comes from the Alembic config's ``sqlalchemy.url`` when a tool sets it, else
from ``DATABASE_URL`` — never from a committed file.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(alembic_ini: Path, database_url: str | None = None) -> Config:
    config = Config(str(alembic_ini))
    config.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(alembic_ini: Path, database_url: str) -> None:
    """Apply every migration of the service whose ``alembic.ini`` is given (blocking)."""
    command.upgrade(alembic_config(alembic_ini, database_url), "head")


async def upgrade_to_head_async(alembic_ini: Path, database_url: str) -> None:
    """:func:`upgrade_to_head` from async code (env.py runs its own event loop in a thread)."""
    await asyncio.to_thread(upgrade_to_head, alembic_ini, database_url)


def _database_url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or sqlalchemy.url) to run migrations")
    return url


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(metadata: MetaData) -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_do_run, metadata)
    await engine.dispose()


def run_migrations(metadata: MetaData) -> None:
    """Body of a service's ``migrations/env.py``."""
    if context.is_offline_mode():
        context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(metadata))
