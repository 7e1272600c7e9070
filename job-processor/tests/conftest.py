"""job-processor tests: a real Postgres migrated with the real migrations, a real Redis; the
registry, file-manager and user-service answered by respx (or the fleet, in tests/ at the root)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

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
def settings(database_url: str, token_issuer: TokenIssuer) -> Settings:
    return Settings(database_url=database_url, jwks_url=token_issuer.jwks_url, log_json=False)


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    return create_app


@pytest.fixture
async def client(make_app: Callable[..., FastAPI], db) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app()) as c:
        yield c
