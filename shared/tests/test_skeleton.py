"""What every service gets from the library beyond errors and auth: the fleet table, list
settings, validated settings copies, the request-body limit, offline /docs, the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from fedimpute_shared.app import create_service_app
from fedimpute_shared.body_limit import streams_body
from fedimpute_shared.clock import current_clock, use_clock
from fedimpute_shared.config import ListSetting, ServiceSettings, validated_copy
from fedimpute_shared.db import utcnow
from fedimpute_shared.fleet import DATABASES, FLEET, fleet_service
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.clock import ManualClock

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- fleet table


def test_the_fleet_table_has_seven_services_with_distinct_ports_and_databases():
    assert len(FLEET) == 7
    assert len({s.port for s in FLEET}) == 7
    assert len(DATABASES) == len(set(DATABASES)) == 6
    assert fleet_service("file-manager").url_env == "FILE_MANAGER_URL"
    assert fleet_service("file-manager").url_setting == "file_manager_url"
    assert fleet_service("notification").package == "notification_service"
    with pytest.raises(KeyError):
        fleet_service("nope")


def test_a_planned_service_is_listed_but_not_installed():
    # job-processor, notification and monitoring are README folders until their package exists.
    for entry in FLEET:
        assert entry.installed == (ROOT / entry.name / "pyproject.toml").exists(), entry.name


# ---------------------------------------------------------------- settings


class _ListSettings(ServiceSettings):
    origins: ListSetting[str] = []
    paths: ListSetting[Path] = []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a, b ,,c", ["a", "b", "c"]),
        ('["a", "b,c"]', ["a", "b,c"]),
        ("", []),
    ],
)
def test_list_settings_take_json_or_commas(monkeypatch, raw, expected):
    monkeypatch.setenv("ORIGINS", raw)
    assert _ListSettings().origins == expected


def test_list_settings_convert_items(monkeypatch):
    monkeypatch.setenv("PATHS", "/a, /b")
    assert _ListSettings().paths == [Path("/a"), Path("/b")]


def test_validated_copy_refuses_what_the_service_would_refuse():
    settings = ServiceSettings()
    assert validated_copy(settings, database_pool_size=3).database_pool_size == 3
    with pytest.raises(ValidationError):
        validated_copy(settings, database_pool_size=0)  # declared ge=1
    # model_copy(update=...) lets it through: the reason validated_copy exists.
    assert settings.model_copy(update={"database_pool_size": 0}).database_pool_size == 0


def test_validated_copy_keeps_secrets():
    settings = ServiceSettings(cursor_secret="x" * 40)
    assert validated_copy(settings, port=9).cursor_secret.get_secret_value() == "x" * 40


# ---------------------------------------------------------------- body limit


class _Note(BaseModel):
    text: str


_router = APIRouter()


@_router.post("/notes")
async def add_note(note: _Note) -> dict[str, int]:
    return {"length": len(note.text)}


@_router.put("/blobs")
@streams_body
async def put_blob(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@pytest.fixture
def limited_app(settings):
    return create_service_app(
        validated_copy(settings, max_body_bytes=4096),
        title="Limits",
        description="d",
        routers=[_router],
    )


async def test_a_body_over_the_limit_is_a_413_problem(limited_app):
    async with app_client(limited_app) as client:
        ok = await client.post("/notes", json={"text": "x" * 100})
        assert ok.status_code == 200
        response = await client.post("/notes", json={"text": "x" * 5000})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["limit_bytes"] == 4096
    assert response.headers["x-request-id"]


async def test_a_chunked_body_is_cut_at_the_limit(limited_app):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    async with app_client(limited_app) as client:
        response = await client.post(
            "/notes", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


async def test_a_streams_body_route_reads_past_the_limit(limited_app):
    async with app_client(limited_app) as client:
        response = await client.put("/blobs", content=b"y" * 100_000)
    assert response.json() == {"size": 100_000}


# ---------------------------------------------------------------- /docs without internet


async def test_docs_load_their_assets_from_the_service(settings):
    app = create_service_app(settings, title="Docs", description="d", routers=[_router])
    async with app_client(app) as client:
        page = (await client.get("/docs")).text
        assert "cdn" not in page.lower()
        assert "/docs/assets/swagger-ui-bundle.js" in page
        script = await client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert len(script.content) > 100_000
        assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200
        redoc = (await client.get("/redoc")).text
        assert "/docs/assets/redoc.standalone.js" in redoc
        assert "fonts.googleapis" not in redoc


# ---------------------------------------------------------------- clock


async def test_utcnow_follows_the_installed_clock():
    start = datetime(2030, 1, 1, tzinfo=UTC)
    manual = ManualClock(start)
    with use_clock(manual):
        assert utcnow() == start
        await manual.advance(90)
        assert (utcnow() - start).total_seconds() == 90
        assert current_clock().monotonic() == 90
    assert utcnow().year < 2030
