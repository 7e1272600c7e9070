"""Where the tests' PostgreSQL and Redis are.

Order of preference (DESIGN.md §8; never SQLite, never a mock):
1. ``TEST_DATABASE_URL`` / ``DATABASE_URL`` and ``TEST_REDIS_URL`` / ``REDIS_URL``;
2. the local servers on 127.0.0.1:5432 (user ``postgres``) and 127.0.0.1:6379;
3. embedded real servers (:mod:`fedimpute_shared.embedded`) under ``var/test/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from fedimpute_shared.embedded import embedded_postgres, embedded_redis, port_open, to_asyncpg

__all__ = [
    "LOCAL_POSTGRES",
    "LOCAL_REDIS",
    "flush_redis",
    "postgres_admin_url",
    "redis_url",
    "suite_redis_url",
]

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"


def postgres_admin_url(var_dir: Path) -> str:
    """A URL to the ``postgres`` database of a real server the tests may create databases on."""
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        return (
            make_url(to_asyncpg(configured))
            .set(database="postgres")
            .render_as_string(hide_password=False)
        )
    if port_open("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    return embedded_postgres(var_dir / "pg").url


def redis_url(var_dir: Path) -> str:
    configured = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured:
        return configured
    if port_open("127.0.0.1", 6379):
        return LOCAL_REDIS
    return embedded_redis(var_dir / "redis").url


def suite_redis_url(url: str, default_db: int) -> str:
    """The Redis database a suite that empties its database may use: the one ``url`` names
    (``make test`` gives each of its parallel pytest processes its own, and the suites of one
    process run one after another), else ``default_db``. Never a fixed number when the URL names
    one: a suite emptying database 2 before each test emptied another process's streams."""
    parts = urlsplit(url)
    if parts.path.strip("/").isdigit():
        return url
    return urlunsplit(parts._replace(path=f"/{default_db}"))


async def flush_redis(url: str) -> None:
    """Empty the Redis database ``url`` points at (tests give each suite its own number)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
