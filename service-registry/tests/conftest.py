"""service-registry tests: a real Postgres database migrated with the real migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import (
    AsyncSession,
)

from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer, bearer
from service_registry.config import Settings
from service_registry.main import MIGRATIONS_DIR, create_app

from .remotes import FakeRemote


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "service-registry", MIGRATIONS_DIR) as url:
        yield url


@pytest.fixture
def settings(database_url: str, token_issuer: TokenIssuer) -> Settings:
    return Settings(
        database_url=database_url,
        jwks_url=token_issuer.jwks_url,
        health_worker_enabled=False,
        allow_private_urls=False,
        log_json=False,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    """For the shared ``make_app(**overrides)`` fixture (validated settings overrides)."""
    return create_app


@pytest.fixture
async def client(
    make_app: Callable[..., FastAPI], db: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app()) as c:
        yield c


@pytest.fixture
async def api(
    make_app: Callable[..., FastAPI], db: AsyncSession
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that may call loopback services (the remotes and simulators)."""
    async with app_client(make_app(allow_private_urls=True)) as c:
        yield c


@pytest.fixture
def admin(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(roles=["admin"]))


@pytest.fixture
def service_admin(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(roles=["service_admin"]))


@pytest.fixture
def researcher(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(roles=["researcher"]))


def service_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body (a Cloudgene server); tests override what they exercise."""
    body: dict[str, Any] = {
        "name": "AfriGen-D H3Africa Imputation Service",
        "slug": "afrigen-d",
        "kind": "michigan",
        "base_url": "https://impute.afrigen-d.org",
        "cloudgene_app_id": "imputationserver2",
        "location": {"country": "za", "city": "Cape Town", "latitude": -33.92, "longitude": 18.42},
        "limits": {
            "min_samples": 20,
            "max_samples": 50000,
            "supported_builds": ["hg38"],
            "supported_formats": ["vcf"],
        },
        "requires_credentials": True,
        "credential_type": "api_token",
    }
    return body | overrides


@pytest.fixture
def new_service(client: httpx.AsyncClient, admin: dict[str, str]) -> Callable[..., Any]:
    async def create(**overrides: Any) -> dict[str, Any]:
        response = await client.post("/services", json=service_body(**overrides), headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@pytest.fixture
async def start_remote() -> AsyncIterator[Callable[..., Any]]:
    """``await start_remote({path: behaviour})``: a started fake external service (see
    remotes.py); every one started is stopped after the test."""
    servers: list[FakeRemote] = []

    async def start(routes: dict[str, Any] | None = None) -> FakeRemote:
        server = FakeRemote()
        server.routes.update(routes or {})
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def remote(start_remote: Callable[..., Any]) -> FakeRemote:
    """One fake external service; tests set its ``routes``."""
    server: FakeRemote = await start_remote()
    return server
