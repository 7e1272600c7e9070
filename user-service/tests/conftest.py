"""user-service tests: a real Postgres database migrated with the real migrations, real Redis
(database 3), a real signing key, and the app driven over ASGI as a client would."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from fedimpute_shared.config import validated_copy
from fedimpute_shared.sealed import generate_keypair, open_sealed
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.infra import flush_redis, suite_redis_url
from fedimpute_shared.testing.tokens import bearer
from user_service.bootstrap import create_admin
from user_service.config import Settings
from user_service.main import MIGRATIONS_DIR, create_app, passwords_for
from user_service.security.keys import generate_key_file

REDIS_DB = 3
# The notification service's delivery key pair: user-service seals account-email tokens to the
# public half; the tests open them with the private half, as notification does.
DELIVERY_PRIVATE, DELIVERY_PUBLIC = generate_keypair()
PASSWORD = "violet-Otter-sings-at-dawn-42"
ADMIN_PASSWORD = "Quartz-harbour-lantern-77-x"
# Reference data the migrations seed: kept when tables are emptied between tests.
SEEDED_TABLES = {"alembic_version", "roles", "permissions", "role_permissions"}


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "user-service", MIGRATIONS_DIR) as url:
        yield url


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        )
        # DELETE, not TRUNCATE: on a handful of rows it is several times faster.
        for table in [r[0] for r in rows if r[0] not in SEEDED_TABLES]:
            await conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 (catalog names)


@pytest.fixture(autouse=True)
async def _empty_tables_after_each_test(engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    await empty_tables(engine)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session for arranging and checking data directly (tables are emptied after each test)."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        yield session


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "signing.pem"
    generate_key_file(path)
    return path


@pytest.fixture(scope="session")
async def redis_test_url(redis_url: str) -> AsyncIterator[str]:
    url = suite_redis_url(redis_url, REDIS_DB)
    await flush_redis(url)
    yield url
    await flush_redis(url)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_test_url: str, signing_key: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_test_url,
        jwt_signing_key_file=signing_key,
        # Cheap argon2id: the tests check behaviour, not the hash's cost.
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
        # Pub/sub channels are global to a Redis server: keep ours to this run.
        api_token_revoked_channel=f"test:api-token-revoked:{secrets.token_hex(4)}",
        log_json=False,
        notification_delivery_public_key=DELIVERY_PUBLIC,
    )


@pytest.fixture(scope="session")
def default_app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def make_app(settings: Settings, default_app: FastAPI) -> Callable[..., FastAPI]:
    """The default app, or a new one with changed settings (run it with ``app_client``)."""

    def build(**overrides: Any) -> FastAPI:
        return create_app(validated_copy(settings, **overrides)) if overrides else default_app

    return build


@pytest.fixture(scope="session")
async def client(default_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """One started app for the run: FastAPI prepares each route on its first request and a
    start opens pools and TLS contexts, both costlier than most tests. Tests stay isolated by
    the database (emptied after each) and by their own users."""
    async with app_client(default_app) as c:
        yield c


@pytest.fixture
async def redis(redis_test_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_test_url)
    yield client
    await client.aclose()


def registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "ada",
        "email": "ada@example.org",
        "password": PASSWORD,
        "full_name": "Ada Lovelace",
        "institution": "University of Cape Town",
        "country": "za",
    }
    return body | overrides


async def register(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/auth/register", json=registration(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(
    client: httpx.AsyncClient, name: str = "ada", password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"login": name, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
async def user_tokens(client: httpx.AsyncClient) -> dict[str, Any]:
    """A registered researcher ``ada``, logged in: her token pair and her id."""
    user = await register(client)
    return await login(client) | {"user_id": user["id"]}


@pytest.fixture
def user_auth(user_tokens: dict[str, Any]) -> dict[str, str]:
    return bearer(user_tokens["access_token"])


@pytest.fixture
async def admin_auth(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> dict[str, str]:
    """An administrator ``root`` created the way ``create-admin`` does, logged in."""
    await create_admin(
        db,
        passwords_for(settings),
        settings,
        username="root",
        email="root@example.org",
        password=ADMIN_PASSWORD,
    )
    await db.commit()
    tokens = await login(client, "root", ADMIN_PASSWORD)
    return bearer(tokens["access_token"])


def service_token_request(
    client_id: str, audience: str = "user-service", secret: str | None = None
) -> dict[str, str]:
    return {
        "client_id": client_id,
        "client_secret": secret or "dev-service-secret-change-me",
        "audience": audience,
    }


async def service_auth(client: httpx.AsyncClient, caller: str) -> dict[str, str]:
    """A real service token for ``caller``, addressed to user-service."""
    response = await client.post("/internal/service-tokens", json=service_token_request(caller))
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def new_id() -> str:
    return str(uuid.uuid4())


async def emailed_token(db: AsyncSession, event_type: str, email: str | None = None) -> str:
    """The one-time token of the latest ``event_type`` outbox event (to ``email``): what the
    notification service would put in the email."""
    from sqlalchemy import select

    from user_service.models import OutboxEvent

    rows = (
        await db.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.event_type == event_type)
            .order_by(OutboxEvent.seq.desc())
        )
    ).all()
    payload = next(r.payload for r in rows if email is None or r.payload["email"] == email)
    return open_sealed(DELIVERY_PRIVATE, payload["sealed_token"])
