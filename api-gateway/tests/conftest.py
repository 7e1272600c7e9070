"""api-gateway tests: real upstream HTTP servers (uvicorn, free ports), real Redis (db 2), real
signed tokens and JWKS (TokenIssuer); the gateway is driven over ASGI or served by uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api_gateway.config import UPSTREAMS, Settings
from api_gateway.main import create_app
from fedimpute_shared.fleet import fleet_service
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.infra import flush_redis, suite_redis_url
from fedimpute_shared.testing.tokens import TokenIssuer, bearer

from .support import GATEWAY_SECRET, ApiToken, Server, UpstreamLog, echo_service

SERVICES = tuple(s.name for s in UPSTREAMS)
REDIS_DB = 2


def url_setting(service: str) -> str:
    return fleet_service(service).url_setting


@pytest.fixture(scope="session")
def redis_db_url(redis_url: str) -> str:
    return suite_redis_url(redis_url, REDIS_DB)


@pytest.fixture(autouse=True)
async def _clean_redis(redis_db_url: str) -> None:
    await flush_redis(redis_db_url)


@pytest.fixture(scope="session")
def api_tokens() -> dict[str, ApiToken]:
    """The API tokens the fake user-service knows (``fgi_...`` -> token); reset per test."""
    return {}


@pytest.fixture(scope="session")
def upstream_logs() -> dict[str, UpstreamLog]:
    return {service: UpstreamLog() for service in SERVICES}


@pytest.fixture(autouse=True)
def _reset_upstreams(
    upstream_logs: dict[str, UpstreamLog], api_tokens: dict[str, ApiToken]
) -> None:
    for log in upstream_logs.values():
        log.clear()
    api_tokens.clear()


@pytest.fixture(scope="session")
async def upstreams(
    token_issuer: TokenIssuer,
    api_tokens: dict[str, ApiToken],
    upstream_logs: dict[str, UpstreamLog],
) -> AsyncIterator[dict[str, str]]:
    """One real HTTP server per service; user-service's also does the internal endpoints."""
    servers = {}
    for service in SERVICES:
        is_user_service = service == "user-service"
        app = echo_service(
            service,
            upstream_logs[service],
            issuer=token_issuer if is_user_service else None,
            api_tokens=api_tokens if is_user_service else None,
        )
        servers[service] = await Server(app).start()
    yield {service: server.url for service, server in servers.items()}
    for server in servers.values():
        await server.stop()


@pytest.fixture
def settings(upstreams: dict[str, str], token_issuer: TokenIssuer, redis_db_url: str) -> Settings:
    urls: dict[str, Any] = {url_setting(s): url for s, url in upstreams.items()}
    return Settings(
        redis_url=redis_db_url,
        jwks_url=token_issuer.jwks_url,
        service_client_secret=SecretStr(GATEWAY_SECRET),
        log_json=False,
        rate_limit_login="5/60",
        rate_limit_upload="1000/60",
        rate_limit_default="1000/60",
        openapi_retry_seconds=0.2,
        **urls,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    """For the shared ``make_app(**overrides)`` fixture (validated settings overrides)."""
    return create_app


@pytest.fixture
async def client(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app()) as c:
        yield c


@pytest.fixture
async def serve_gateway(
    make_app: Callable[..., FastAPI],
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start the gateway under uvicorn (for raw paths and WebSockets); stopped after the test."""
    started: list[Server] = []

    async def start(**overrides: Any) -> str:
        server = await Server(make_app(**overrides), lifespan="on").start()
        started.append(server)
        return server.url

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def user_token(token_issuer: TokenIssuer) -> str:
    return token_issuer.access_token(roles=["researcher"])


@pytest.fixture
def user(user_token: str) -> dict[str, str]:
    return bearer(user_token)
