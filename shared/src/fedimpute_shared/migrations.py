"""Alembic helpers: every service's ``migrations/env.py`` is three lines calling
:func:`run_migrations`, and tools (tests, the launcher, ``python -m <service> migrate``) upgrade
a database with :func:`upgrade_to_head`. Each service keeps its migrations inside its package
(``src/<package>/migrations``) so they ship with it.

The database URL comes from the Alembic config's ``sqlalchemy.url`` when a tool sets it, else
from ``DATABASE_URL`` — never from a committed file.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = [
    "alembic_config",
    "alembic_heads",
    "run_migrations",
    "upgrade_to_head",
    "upgrade_to_head_async",
]


def alembic_config(migrations_dir: Path, database_url: str | None = None) -> Config:
    """An Alembic config for a service's migrations folder (shipped inside its package, so
    an installed service can migrate without its source tree)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def alembic_heads(migrations_dir: Path) -> set[str]:
    """The head revision(s) of a service's migration history."""
    return set(ScriptDirectory.from_config(alembic_config(migrations_dir)).get_heads())


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply every migration in ``migrations_dir`` to ``database_url`` (blocking)."""
    command.upgrade(alembic_config(migrations_dir, database_url), "head")


async def upgrade_to_head_async(migrations_dir: Path, database_url: str) -> None:
    """:func:`upgrade_to_head` from async code (env.py runs its own event loop in a thread)."""
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url)


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
