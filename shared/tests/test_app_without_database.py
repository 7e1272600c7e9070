"""create_service_app for a service without a database (the api-gateway): Redis-only readiness."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from fedimpute_shared.app import create_service_app, service_cli
from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.testing.client import app_client

# Nothing listens on port 9: any attempt to use the database would fail the readiness check.
UNREACHABLE_DB = "postgresql+asyncpg://postgres@127.0.0.1:9/none"


def _db2(redis_url: str) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path="/2"))


def _settings(redis_url: str, token_issuer) -> ServiceSettings:
    return ServiceSettings(
        service_name="edge",
        database_url=UNREACHABLE_DB,
        redis_url=_db2(redis_url),
        jwks_url=token_issuer.jwks_url,
    )


async def test_ready_checks_only_redis_without_migrations(redis_url, token_issuer):
    app = create_service_app(
        _settings(redis_url, token_issuer),
        title="Edge",
        description="edge",
        routers=[],
        uses_redis=True,
    )
    async with app_client(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok"}


async def test_ready_is_503_when_redis_is_down(token_issuer):
    settings = ServiceSettings(
        service_name="edge",
        database_url=UNREACHABLE_DB,
        redis_url="redis://127.0.0.1:9/2",
        jwks_url=token_issuer.jwks_url,
    )
    app = create_service_app(settings, title="Edge", description="e", routers=[], uses_redis=True)
    async with app_client(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("redis unavailable")


async def test_openapi_url_moves_the_spec_and_docs(redis_url, token_issuer):
    app = create_service_app(
        _settings(redis_url, token_issuer),
        title="Edge",
        description="edge",
        routers=[],
        uses_redis=True,
        openapi_url="/api/openapi.json",
    )
    async with app_client(app) as client:
        moved = await client.get("/api/openapi.json")
        old = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert moved.status_code == 200
    assert moved.json()["info"]["title"] == "Edge"
    assert old.status_code == 404
    assert "/api/openapi.json" in docs.text


def test_migrate_is_a_noop_without_a_database(capsys: pytest.CaptureFixture[str]) -> None:
    code = service_cli(
        lambda: ServiceSettings(service_name="edge", database_url=UNREACHABLE_DB),
        lambda settings: pytest.fail("migrate must not build the app"),
        None,
        argv=["migrate"],
    )
    assert code == 0
    assert "nothing to migrate" in capsys.readouterr().err
