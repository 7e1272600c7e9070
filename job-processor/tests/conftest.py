"""job-processor tests: a real Postgres migrated with the real migrations, a real Redis; the
registry, file-manager and user-service answered by respx (or the fleet, in tests/ at the root)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from secrets import token_hex
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from redis.asyncio import Redis

from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer, bearer
from job_processor.config import Settings
from job_processor.main import MIGRATIONS_DIR, create_app

REGISTRY = "http://registry.test"
FILES = "http://files.test"
USERS = "http://users.test"


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
        service_registry_url=REGISTRY,
        file_manager_url=FILES,
        user_service_url=USERS,
        workers_enabled=False,  # tests drive the workers directly
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    return create_app


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI, db) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as c:
        yield c


# ---------------------------------------------------------------------------- the other services


def panel_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "slug": "1000g-phase3",
        "remote_id": "apps@1000g-phase-3-v5",
        "display_name": "1000 Genomes Phase 3",
        "populations": ["AFR", "EUR", "mixed"],
        "build": "hg19",
        "is_available": True,
    }
    return body | overrides


def service_body(**overrides: Any) -> dict[str, Any]:
    """The registry's internal ServiceDetail of a Cloudgene server (tests override fields)."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "Michigan Imputation Server",
        "slug": "michigan",
        "kind": "michigan",
        "base_url": "http://cloudgene.test",
        "api_url": None,
        "cloudgene_app_id": "imputationserver2",
        "protocol_options": {},
        "workflow_profile": None,
        "limits": {
            "max_file_size_bytes": 10_000_000,
            "min_samples": 1,
            "max_samples": 1000,
            "supported_builds": ["hg19", "hg38"],
        },
        "requires_credentials": True,
        "credential_type": "api_token",
        "is_active": True,
        "deleted_at": None,
        "health": {"status": "healthy", "last_error": None},
        "panels": [panel_body()],
    }
    return body | overrides


def file_body(owner: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "owner_id": str(owner),
        "filename": "chr20.vcf.gz",
        "kind": "input",
        "format": "vcf",
        "status": "valid",
        "size_bytes": 1000,
        "checksums": {"sha256": "ab" * 32},
        "validation": {
            "status": "valid",
            "statistics": {"samples": 50, "variants": 100},
            "build": {"detected": "hg19", "detected_from": "contig_lengths"},
        },
    }
    return body | overrides


@dataclass
class World:
    """What the registry, file-manager and the vault answer (respx)."""

    mock: respx.MockRouter
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    credentials: set[tuple[str, str]] = field(default_factory=set)
    health: dict[str, str] = field(default_factory=dict)
    # (user id, service id) -> the vault's credential_type and secret, when not the default token
    secrets: dict[tuple[str, str], tuple[str, dict[str, str]]] = field(default_factory=dict)

    def add_service(self, **overrides: Any) -> dict[str, Any]:
        service = service_body(**overrides)
        self.services[service["id"]] = service
        self.services[service["slug"]] = service
        return service

    def add_file(self, owner: uuid.UUID, **overrides: Any) -> dict[str, Any]:
        found = file_body(owner, **overrides)
        self.files[found["id"]] = found
        return found

    def store_credentials(
        self,
        user: uuid.UUID,
        service: dict[str, Any],
        kind: str = "api_token",
        secret: dict[str, str] | None = None,
    ) -> None:
        self.credentials.add((str(user), service["id"]))
        if secret is not None:
            self.secrets[(str(user), service["id"])] = (kind, secret)


@pytest.fixture
def world() -> Iterator[World]:
    with respx.mock(assert_all_called=False, assert_all_mocked=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        w = World(mock)
        mock.post(f"{USERS}/internal/service-tokens").respond(
            json={"access_token": "t", "token_type": "Bearer", "expires_in": 300}
        )

        def service(request: httpx.Request, ref: str) -> httpx.Response:
            found = w.services.get(ref)
            return httpx.Response(200, json=found) if found else httpx.Response(404)

        def active(request: httpx.Request) -> httpx.Response:
            unique = {s["id"]: s for s in w.services.values() if s["is_active"]}
            return httpx.Response(200, json=list(unique.values()))

        def health(request: httpx.Request, ref: str) -> httpx.Response:
            found = w.services.get(ref)
            if not found:
                return httpx.Response(404)
            status = w.health.get(found["id"], "healthy")
            return httpx.Response(
                200, json={"status": status, "error": None if status == "healthy" else "down"}
            )

        def file(request: httpx.Request, file_id: str) -> httpx.Response:
            found = w.files.get(file_id)
            if found is None or found["owner_id"] != request.url.params.get("user_id"):
                return httpx.Response(404)
            return httpx.Response(200, json=found)

        def credential(request: httpx.Request, user_id: str, service_id: str) -> httpx.Response:
            if (user_id, service_id) not in w.credentials:
                return httpx.Response(404)
            kind, secret = w.secrets.get(
                (user_id, service_id), ("api_token", {"token": "cloudgene-token"})
            )
            return httpx.Response(
                200,
                json={
                    "user_id": user_id,
                    "service_id": service_id,
                    "credential_type": kind,
                    "secret": secret,
                    "expires_at": None,
                },
            )

        mock.get(f"{REGISTRY}/internal/services").mock(side_effect=active)
        mock.get(url__regex=rf"{REGISTRY}/internal/services/(?P<ref>[^/]+)/health").mock(
            side_effect=health
        )
        mock.get(url__regex=rf"{REGISTRY}/internal/services/(?P<ref>[^/]+)$").mock(
            side_effect=service
        )
        mock.get(url__regex=rf"{FILES}/internal/files/(?P<file_id>[^/?]+)(\?.*)?$").mock(
            side_effect=file
        )
        mock.get(
            url__regex=rf"{USERS}/internal/users/(?P<user_id>[^/]+)/service-credentials/(?P<service_id>[^/]+)$"
        ).mock(side_effect=credential)
        yield w


@dataclass
class User:
    id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture
def make_user(token_issuer: TokenIssuer) -> Callable[..., User]:
    def make(roles: tuple[str, ...] = ("researcher",), scopes: list[str] | None = None) -> User:
        user_id = uuid.uuid4()
        token = token_issuer.access_token(user_id, roles=roles, scopes=scopes)
        return User(user_id, bearer(token))

    return make


@pytest.fixture
def alice(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def bob(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user(roles=("admin",))
