"""Alembic helpers: every service's ``migrations/env.py`` is three lines calling
:func:`run_migrations`, and tools (tests, the launcher, ``python -m <service> migrate``) upgrade
a database with :func:`upgrade_to_head`. Each service keeps its migrations inside its package
(``src/<package>/migrations``) so they ship with it.

The database URL comes from the Alembic config's ``sqlalchemy.url`` when a tool sets it, else
from ``DATABASE_URL`` — never from a committed file.

Alembic is imported only by the functions that migrate: a serving process needs just its
history's heads (for ``/ready``), which :func:`alembic_heads` reads from the revision files
themselves. Importing Alembic costs ~5 MB per process (it brings Mako, and Mako brings Pygments)
that a service would carry for its whole life.
"""

from __future__ import annotations

import ast
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "alembic_heads",
    "database_revisions",
    "run_migrations",
    "upgrade_to_head",
    "upgrade_to_head_async",
]


def alembic_config(migrations_dir: Path, database_url: str | None = None) -> Config:
    """An Alembic config for a service's migrations folder (shipped inside its package, so
    an installed service can migrate without its source tree)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def alembic_heads(migrations_dir: Path) -> set[str]:
    """The head revision(s) of a service's migration history: the revisions no other revision
    names as its ``down_revision``, read from the ``revision`` and ``down_revision``
    assignments of ``versions/*.py`` without importing Alembic or running the files (the
    tests compare it with Alembic's own ``ScriptDirectory.get_heads()``)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (migrations_dir / "versions").glob("*.py"):
        fields = _revision_fields(path)
        if "revision" in fields:
            revisions.update(fields["revision"])
            parents.update(fields.get("down_revision", ()))
    return revisions - parents


def _revision_fields(path: Path) -> dict[str, tuple[str, ...]]:
    """The module-level ``revision`` / ``down_revision`` constants of a revision file, each as
    a tuple (a merge revision's ``down_revision`` is a tuple of its parents; None is empty)."""
    fields: dict[str, tuple[str, ...]] = {}
    target: ast.expr
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            constant = ast.literal_eval(value)
            fields[target.id] = (constant,) if isinstance(constant, str) else tuple(constant or ())
    return fields


async def database_revisions(connection: AsyncConnection) -> set[str]:
    """The revision(s) a database is at; raises (the table is missing) before any migration."""
    rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return {row[0] for row in rows}


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply every migration in ``migrations_dir`` to ``database_url`` (blocking)."""
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, database_url), "head")


async def upgrade_to_head_async(migrations_dir: Path, database_url: str) -> None:
    """:func:`upgrade_to_head` from async code (env.py runs its own event loop in a thread)."""
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url)


def _database_url() -> str:
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or sqlalchemy.url) to run migrations")
    return url


def _do_run(connection: Connection, metadata: MetaData) -> None:
    from alembic import context

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
    from alembic import context

    if context.is_offline_mode():
        context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(metadata))
