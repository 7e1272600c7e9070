"""job-processor tests: a real Postgres migrated with the real migrations, a real Redis; the
registry, file-manager and user-service answered by respx (or the fleet, in tests/ at the root)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from secrets import token_hex

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer
from job_processor.config import Settings
from job_processor.main import MIGRATIONS_DIR, create_app


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "job_processor", MIGRATIONS_DIR) as url:
        yield url


@pytest.fixture
def stream() -> str:
    """This test's own event stream (deleted afterwards by the redis fixture)."""
    return f"test:events:{token_hex(4)}"


@pytest.fixture
async def redis(redis_url: str, stream: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.delete(stream)
    await client.aclose()


@pytest.fixture
def settings(database_url: str, token_issuer: TokenIssuer, redis_url: str, stream: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        event_stream=stream,
        outbox_relay_interval_seconds=0.05,
        log_json=False,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    return create_app


@pytest.fixture
async def client(make_app: Callable[..., FastAPI], db) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app()) as c:
        yield c
