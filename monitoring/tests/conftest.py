"""monitoring test fixtures: a migrated database, the app with its workers off (tests drive
them), the test's own Redis stream, and respx standing in for the fleet and job-processor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from secrets import token_hex
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from redis.asyncio import Redis

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import Event, ServiceHealthChanged
from fedimpute_shared.outbox import event_fields
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer, bearer
from monitoring_service.config import Settings
from monitoring_service.main import MIGRATIONS_DIR, create_app

USER_SERVICE = "http://user-service.test"
REGISTRY = "http://service-registry.test"
JOB_PROCESSOR = "http://job-processor.test"
# Every fleet service at a respx-mocked address of its own.
FLEET_URLS = {
    "api_gateway_url": "http://api-gateway.test",
    "user_service_url": USER_SERVICE,
    "service_registry_url": REGISTRY,
    "job_processor_url": JOB_PROCESSOR,
    "file_manager_url": "http://file-manager.test",
    "notification_url": "http://notification.test",
    "monitoring_url": "http://monitoring.test",
}


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "monitoring", MIGRATIONS_DIR) as url:
        yield url


@pytest.fixture
def stream() -> str:
    """This test's own Redis stream (deleted afterwards)."""
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
        workers_enabled=False,  # tests drive the workers directly
        consumer_enabled=False,
        outbox_relay_enabled=False,
        log_json=False,
        consumer_block_ms=10,
        **FLEET_URLS,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    return create_app


@pytest.fixture
async def app(make_app: Callable[..., FastAPI], db: Any, redis: Redis) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (``app.state.<worker>`` for driving workers)."""
    application = make_app()
    async with app_client(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: FastAPI) -> httpx.AsyncClient:
    return app.state.test_client  # type: ignore[no-any-return]


@pytest.fixture
def admin(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(uuid.uuid4(), roles=("admin",)))


@pytest.fixture
def user_token(token_issuer: TokenIssuer) -> Callable[..., dict[str, str]]:
    def make(user_id: uuid.UUID, roles: tuple[str, ...] = ("researcher",)) -> dict[str, str]:
        return bearer(token_issuer.access_token(user_id, roles=roles))

    return make


# ---------------------------------------------------------------------------- events


def health_changed(
    status: str = "unhealthy",
    *,
    service_id: uuid.UUID | None = None,
    slug: str = "sandbox-wes",
    previous: str = "healthy",
    at: datetime | None = None,
    error: str | None = "connect timeout",
) -> ServiceHealthChanged:
    return ServiceHealthChanged(
        producer="service-registry",
        service_id=service_id or uuid.uuid5(uuid.NAMESPACE_DNS, slug),
        service_slug=slug,
        previous_status=previous,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        error=error if status != "healthy" else None,
        response_time_ms=12.5,
        checked_at=at or utcnow(),
    )


@pytest.fixture
def publish(redis: Redis, stream: str) -> Callable[..., Any]:
    async def add(event: Event | dict[str, str]) -> str:
        fields = event_fields(event) if isinstance(event, Event) else event
        entry_id = await redis.xadd(stream, fields)  # type: ignore[arg-type]
        return entry_id.decode()

    return add


@pytest.fixture
async def consume(app: FastAPI) -> Callable[..., Any]:
    """Read and process everything new on the stream (the group is created first)."""
    await app.state.consumer.ensure_group("0")

    async def run() -> int:
        total = 0
        while count := await app.state.consumer.read_new(block_ms=None):
            total += count
        return total

    return run


# ---------------------------------------------------------------------------- upstreams


@pytest.fixture
def upstreams() -> Iterator[respx.MockRouter]:
    """user-service's token endpoint; tests add the registry's and job-processor's routes
    (then call ``upstreams.route().pass_through()`` is not needed: the JWKS is passed)."""
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{USER_SERVICE}/internal/service-tokens").respond(
            json={"access_token": "service-token", "token_type": "Bearer", "expires_in": 600}
        )
        mock.route(host="127.0.0.1").pass_through()  # the token issuer's JWKS
        yield mock
