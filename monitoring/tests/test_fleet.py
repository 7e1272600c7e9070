"""Fleet health: concurrent probes of /health and /ready, the overall status, history, uptime."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import respx

from fedimpute_shared.db import utcnow
from monitoring_service.fleet.schemas import Overall
from monitoring_service.fleet.service import overall
from monitoring_service.models import FleetCheck, FleetStatus

from .conftest import FLEET_URLS

URLS = {key.removesuffix("_url").replace("_", "-"): url for key, url in FLEET_URLS.items()}


def fleet_mock(mock: respx.MockRouter, overrides: dict[str, object] | None = None) -> None:
    """Every service up, except those in ``overrides`` (name -> ('health'|'ready', response))."""
    overrides = overrides or {}
    for name, url in URLS.items():
        health, ready = (
            httpx.Response(200, json={"status": "healthy"}),
            httpx.Response(200, json={"status": "ready", "checks": {"database": "ok"}}),
        )
        override = overrides.get(name)
        if isinstance(override, tuple) and override[0] == "health":
            health = override[1]
        if isinstance(override, tuple) and override[0] == "ready":
            ready = override[1]
        if callable(override):
            mock.get(f"{url}/health").mock(side_effect=override)
        else:
            mock.get(f"{url}/health").mock(return_value=health)
        mock.get(f"{url}/ready").mock(return_value=ready)
    mock.route().pass_through()  # the token issuer's JWKS


@pytest.fixture
def fleet():
    with respx.mock(assert_all_called=False) as mock:
        yield mock


async def test_every_service_up_is_healthy(app, client, admin, fleet):
    fleet_mock(fleet)
    results = await app.state.fleet_poller.poll_once()
    assert {r.status for r in results} == {FleetStatus.UP}
    body = (await client.get("/monitoring/health", headers=admin)).json()
    assert body["status"] == "healthy"
    assert [s["service"] for s in body["services"]] == list(URLS)
    gateway = body["services"][0]
    assert gateway["status"] == "up"
    assert gateway["uptime"]["24h"] == {"checks": 1, "up_checks": 1, "uptime_percent": 100.0}


async def test_a_service_alive_but_not_ready_is_degraded_with_the_reason(app, client, admin, fleet):
    not_ready = httpx.Response(
        503,
        json={
            "status": "not_ready",
            "checks": {"database": "database unavailable: OSError", "redis": "ok"},
        },
    )
    fleet_mock(fleet, {"file-manager": ("ready", not_ready)})
    await app.state.fleet_poller.poll_once()
    body = (await client.get("/monitoring/health", headers=admin)).json()
    assert body["status"] == "degraded"
    fm = next(s for s in body["services"] if s["service"] == "file-manager")
    assert fm["status"] == "degraded"
    assert fm["error"] == "database: database unavailable: OSError"


async def test_a_hung_service_is_down_after_the_timeout_and_does_not_hold_the_round(
    make_app, db, fleet
):
    async def hang(request):
        await asyncio.sleep(5)
        return httpx.Response(200)

    fleet_mock(fleet, {"notification": hang, "file-manager": hang})
    from fedimpute_shared.testing.client import app_client

    application = make_app(fleet_probe_timeout_seconds=0.3)
    async with app_client(application):
        started = time.perf_counter()
        results = {r.service: r for r in await application.state.fleet_poller.poll_once()}
        elapsed = time.perf_counter() - started
    assert elapsed < 2  # concurrent: about one timeout, not one per hung service
    assert results["notification"].status is FleetStatus.DOWN
    assert results["notification"].error == "no answer within 0.3 s"
    assert results["user-service"].status is FleetStatus.UP


async def test_unreachable_or_failing_health_is_down(app, client, admin, fleet):
    fleet_mock(
        fleet,
        {
            "api-gateway": ("health", httpx.Response(500)),
            "job-processor": lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")),
        },
    )
    await app.state.fleet_poller.poll_once()
    body = (await client.get("/monitoring/health", headers=admin)).json()
    by_name = {s["service"]: s for s in body["services"]}
    assert by_name["api-gateway"]["error"] == "/health answered 500"
    assert by_name["job-processor"]["error"] == "unreachable: ConnectError"
    assert body["status"] == "down"  # the gateway is essential


def test_overall_status_rules():
    up, down, degraded = FleetStatus.UP, FleetStatus.DOWN, FleetStatus.DEGRADED
    assert overall({"api-gateway": up, "user-service": up, "x": up}) is Overall.HEALTHY
    assert overall({"api-gateway": up, "user-service": up, "x": degraded}) is Overall.DEGRADED
    assert overall({"api-gateway": up, "user-service": up, "x": down}) is Overall.DEGRADED
    assert overall({"api-gateway": up, "user-service": down, "x": up}) is Overall.DOWN
    assert (
        overall({"api-gateway": up, "user-service": up, "a": down, "b": down, "c": down})
        is Overall.DOWN
    )
    assert overall({"api-gateway": up, "user-service": up, "x": None}) is Overall.DEGRADED


async def test_uptime_over_the_three_windows(app, client, admin, db):
    now = utcnow()
    ages = [timedelta(hours=1), timedelta(hours=2), timedelta(days=2), timedelta(days=20)]
    statuses = [FleetStatus.UP, FleetStatus.DOWN, FleetStatus.UP, FleetStatus.DOWN]
    db.add_all(
        FleetCheck(service="file-manager", status=s, checked_at=now - age)
        for s, age in zip(statuses, ages, strict=True)
    )
    await db.commit()
    body = (await client.get("/monitoring/health", headers=admin)).json()
    fm = next(s for s in body["services"] if s["service"] == "file-manager")
    assert fm["uptime"]["24h"]["uptime_percent"] == 50.0
    assert fm["uptime"]["7d"]["uptime_percent"] == pytest.approx(66.67)
    assert fm["uptime"]["30d"] == {"checks": 4, "up_checks": 2, "uptime_percent": 50.0}
    never = next(s for s in body["services"] if s["service"] == "notification")
    assert never["status"] is None
    assert never["uptime"]["30d"]["uptime_percent"] is None


async def test_history_newest_first_paginated(app, client, admin, db):
    now = utcnow()
    db.add_all(
        FleetCheck(
            service="notification", status=FleetStatus.UP, checked_at=now - timedelta(minutes=i)
        )
        for i in range(5)
    )
    await db.commit()
    first = (
        await client.get("/monitoring/health/notification/history?limit=3", headers=admin)
    ).json()
    assert len(first["items"]) == 3
    assert first["items"][0]["checked_at"] > first["items"][1]["checked_at"]
    rest = await client.get(
        f"/monitoring/health/notification/history?limit=3&cursor={first['next_cursor']}",
        headers=admin,
    )
    assert len(rest.json()["items"]) == 2


async def test_history_bad_input(client, admin):
    unknown = await client.get("/monitoring/health/nope/history", headers=admin)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    backwards = await client.get(
        "/monitoring/health/notification/history",
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=admin,
    )
    assert backwards.status_code == 400
    naive = await client.get(
        "/monitoring/health/notification/history",
        params={"since": "2026-01-02T00:00:00"},
        headers=admin,
    )
    assert naive.status_code == 422


async def test_fleet_views_are_for_admins(client, user_token):
    assert (await client.get("/monitoring/health")).status_code == 401
    researcher = user_token(uuid.uuid4())
    assert (await client.get("/monitoring/health", headers=researcher)).status_code == 403
    assert (await client.post("/monitoring/health/check", headers=researcher)).status_code == 403


async def test_prune_removes_checks_older_than_the_retention(app, db):
    now = utcnow()
    db.add_all(
        [
            FleetCheck(service="x", status=FleetStatus.UP, checked_at=now - timedelta(days=40)),
            FleetCheck(service="x", status=FleetStatus.UP, checked_at=now - timedelta(days=1)),
        ]
    )
    await db.commit()
    assert await app.state.fleet_poller.prune() == 1
