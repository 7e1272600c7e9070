"""file-manager tests: a real Postgres database migrated with the real migrations, a storage
directory per test, tokens from a real JWKS, and helpers to check nothing was left behind."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncSession,
)

from fedimpute_shared.embedded import free_port
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer, bearer
from file_manager.config import Settings
from file_manager.main import MIGRATIONS_DIR, create_app
from file_manager.models import StoredFile
from file_manager.testdata import VcfSpec, vcf_bytes


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "file-manager", MIGRATIONS_DIR) as url:
        yield url


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(database_url: str, token_issuer: TokenIssuer, storage_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jwks_url=token_issuer.jwks_url,
        storage_dir=storage_dir,
        public_base_path="/files",
        reaper_enabled=False,
        validation_timeout_seconds=60,
        log_json=False,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    """For the shared ``make_app(**overrides)`` fixture (validated settings overrides)."""
    return create_app


@pytest.fixture
async def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
async def client(app: FastAPI, db: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as c:
        yield c


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def alice(token_issuer: TokenIssuer, user_id: uuid.UUID) -> dict[str, str]:
    return bearer(token_issuer.access_token(user_id, roles=["researcher"]))


@pytest.fixture
def bob(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(roles=["researcher"]))


@pytest.fixture
def admin(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.access_token(roles=["admin"]))


@pytest.fixture
def job_processor(token_issuer: TokenIssuer) -> dict[str, str]:
    return bearer(token_issuer.service_token("job-processor", "file-manager"))


def good_vcf(**overrides: Any) -> bytes:
    return vcf_bytes(VcfSpec(**overrides))


async def upload_raw(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    filename: str = "study_chr20.vcf.gz",
    **params: Any,
) -> httpx.Response:
    return await client.post(
        "/files", params={"filename": filename, **params}, content=data, headers=headers
    )


async def wait_validated(app: FastAPI) -> None:
    """Let the validation queue finish what was submitted."""
    await asyncio.wait_for(app.state.validation_queue.join(), 60)


async def file_rows(db: AsyncSession) -> int:
    db.expire_all()
    return int(await db.scalar(select(func.count()).select_from(StoredFile)) or 0)


def stored_objects(storage_dir: Path) -> list[Path]:
    """Every byte-holding file under the storage root (objects, partial uploads, temp files)."""
    if not storage_dir.exists():
        return []
    return [p for p in storage_dir.rglob("*") if p.is_file()]


async def assert_nothing_left(db: AsyncSession, storage_dir: Path) -> None:
    assert await file_rows(db) == 0
    assert stored_objects(storage_dir) == []


class LiveServer:
    """The app served by uvicorn on a free port in a thread (for clients such as tuspy that
    speak real HTTP)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            threading.Event().wait(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(make_app: Callable[..., FastAPI], db: AsyncSession) -> Iterator[LiveServer]:
    with LiveServer(make_app()) as server:
        yield server
