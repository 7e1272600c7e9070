"""Health through the API: the caching rule, check now, history, uptime, events, retention,
deactivation — against a real remote on loopback and a real database."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fedimpute_shared.db import utcnow
from fedimpute_shared.testing.client import app_client
from service_registry.health import service as health
from service_registry.models import HealthStatus, ImputationService, OutboxEvent, ServiceHealthCheck

from .conftest import bearer, service_body
from .remotes import WES_SERVICE_INFO, json_body, respond

WES_PATH = "/ga4gh/wes/v1/service-info"


@pytest.fixture
async def remote(start_remote):
    return await start_remote({WES_PATH: json_body(WES_SERVICE_INFO)})


@pytest.fixture
async def api(make_app, db):
    """The registry with loopback allowed (the remote runs on 127.0.0.1)."""
    async with app_client(make_app(allow_private_urls=True, on_demand_reuse_seconds=0)) as c:
        yield c


@pytest.fixture
async def wes_service(api, admin, remote):
    body = service_body(
        slug="wes-node",
        name="WES node",
        kind="ga4gh_wes",
        base_url=remote.url,
        cloudgene_app_id=None,
        requires_credentials=False,
        credential_type="none",
    )
    response = await api.post("/services", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def _set(db, service_id, **fields):
    service = await db.get(ImputationService, uuid.UUID(service_id))
    for k, v in fields.items():
        setattr(service, k, v)
    await db.commit()


async def test_first_read_checks_then_reuses_for_fifteen_minutes(
    api, researcher, wes_service, remote
):
    first = (await api.get(f"/services/{wes_service['id']}/health", headers=researcher)).json()
    assert first["status"] == "healthy"
    assert first["from_cache"] is False
    assert first["details"]["workflow_types"] == ["CWL", "WDL"]
    second = (await api.get(f"/services/{wes_service['id']}/health", headers=researcher)).json()
    assert second["from_cache"] is True
    assert remote.hits[WES_PATH] == 1


async def test_healthy_result_older_than_fifteen_minutes_is_rechecked(
    api, researcher, wes_service, remote, db
):
    await api.get(f"/services/{wes_service['id']}/health", headers=researcher)
    await _set(db, wes_service["id"], health_checked_at=utcnow() - timedelta(minutes=16))
    again = (await api.get(f"/services/{wes_service['id']}/health", headers=researcher)).json()
    assert again["from_cache"] is False
    assert remote.hits[WES_PATH] == 2


async def test_unhealthy_rechecked_after_one_minute_for_users_ten_seconds_for_services(
    api, researcher, token_issuer, wes_service, remote, db
):
    await _set(
        db,
        wes_service["id"],
        health_status=HealthStatus.UNHEALTHY,
        health_checked_at=utcnow() - timedelta(seconds=30),
    )
    user_read = (await api.get(f"/services/{wes_service['id']}/health", headers=researcher)).json()
    assert user_read["from_cache"] is True  # 30 s < 1 min
    system = bearer(token_issuer.service_token("job-processor", "service-registry"))
    system_read = (
        await api.get(f"/internal/services/{wes_service['id']}/health", headers=system)
    ).json()
    assert system_read["from_cache"] is False  # 30 s > 10 s
    assert system_read["status"] == "healthy"
    assert remote.hits[WES_PATH] == 1


async def test_internal_health_needs_a_service_token(api, researcher, wes_service):
    assert (
        await api.get(f"/internal/services/{wes_service['id']}/health", headers=researcher)
    ).status_code == 401


async def test_check_now_records_history_and_status_change_event(
    api, admin, researcher, wes_service, remote, db
):
    response = await api.post(f"/services/{wes_service['id']}/health/check", headers=admin)
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    checks = (await db.scalars(select(ServiceHealthCheck))).all()
    assert [c.status for c in checks] == [HealthStatus.HEALTHY]
    events = (await db.scalars(select(OutboxEvent))).all()
    assert [e.event_type for e in events] == ["service.health_changed"]
    assert events[0].payload["previous_status"] == "unknown"
    assert events[0].payload["status"] == "healthy"


async def test_check_now_is_for_writers(api, researcher, wes_service):
    assert (
        await api.post(f"/services/{wes_service['id']}/health/check", headers=researcher)
    ).status_code == 403


async def test_failures_flip_after_two_and_emit_one_event(make_app, admin, researcher, remote, db):
    async with app_client(make_app(allow_private_urls=True, on_demand_reuse_seconds=0)) as api:
        body = service_body(
            slug="wes-node",
            kind="ga4gh_wes",
            base_url=remote.url,
            cloudgene_app_id=None,
            requires_credentials=False,
            credential_type="none",
        )
        service_id = (await api.post("/services", json=body, headers=admin)).json()["id"]
        statuses = []
        for behaviour in (
            json_body(WES_SERVICE_INFO),
            *[respond(503, b"<html>down</html>", "text/html")] * 3,
        ):
            remote.routes[WES_PATH] = behaviour
            statuses.append(
                (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()[
                    "status"
                ]
            )
    assert statuses == ["healthy", "healthy", "unhealthy", "unhealthy"]
    events = (await db.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at))).all()
    assert [(e.payload["previous_status"], e.payload["status"]) for e in events] == [
        ("unknown", "healthy"),
        ("healthy", "unhealthy"),
    ]
    service = await db.get(ImputationService, uuid.UUID(service_id))
    assert service.consecutive_failures == 3
    assert service.last_error == "HTTP 503"


async def test_concurrent_reads_share_one_probe(make_app, researcher, wes_service, remote):
    import asyncio

    async with app_client(make_app(allow_private_urls=True, on_demand_reuse_seconds=5)) as api:
        responses = await asyncio.gather(
            *(
                api.get(f"/services/{wes_service['id']}/health", headers=researcher)
                for _ in range(10)
            )
        )
    assert {r.json()["status"] for r in responses} == {"healthy"}
    assert remote.hits[WES_PATH] == 1


async def test_history_newest_first_with_time_range_and_uptime(api, researcher, wes_service, db):
    now = utcnow()
    statuses = [
        HealthStatus.HEALTHY,
        HealthStatus.UNHEALTHY,
        HealthStatus.HEALTHY,
        HealthStatus.DEGRADED,
    ]
    for hours_ago, status in zip((1, 2, 48, 24 * 20), statuses, strict=True):
        db.add(
            ServiceHealthCheck(
                service_id=uuid.UUID(wes_service["id"]),
                status=status,
                checked_at=now - timedelta(hours=hours_ago),
            )
        )
    await db.commit()
    history = (
        await api.get(
            f"/services/{wes_service['id']}/health/history", params={"limit": 2}, headers=researcher
        )
    ).json()
    assert [c["status"] for c in history["items"]] == ["healthy", "unhealthy"]
    rest = (
        await api.get(
            f"/services/{wes_service['id']}/health/history",
            params={"cursor": history["next_cursor"]},
            headers=researcher,
        )
    ).json()
    assert [c["status"] for c in rest["items"]] == ["healthy", "degraded"]
    ranged = await api.get(
        f"/services/{wes_service['id']}/health/history",
        params={"since": (now - timedelta(hours=3)).isoformat(), "until": now.isoformat()},
        headers=researcher,
    )
    assert len(ranged.json()["items"]) == 2
    uptime = (await api.get(f"/services/{wes_service['id']}/uptime", headers=researcher)).json()[
        "windows"
    ]
    assert uptime["24h"] == {"checks": 2, "up_checks": 1, "uptime_percent": 50.0}
    assert uptime["7d"] == {"checks": 3, "up_checks": 2, "uptime_percent": 66.67}
    assert uptime["30d"]["checks"] == 4


async def test_history_bad_ranges(api, researcher, wes_service):
    url = f"/services/{wes_service['id']}/health/history"
    assert (
        await api.get(
            url,
            params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            headers=researcher,
        )
    ).status_code == 400
    assert (
        await api.get(url, params={"since": "2026-01-01T00:00:00"}, headers=researcher)
    ).status_code == 422


async def test_uptime_without_checks_is_null(api, researcher, wes_service):
    windows = (await api.get(f"/services/{wes_service['id']}/uptime", headers=researcher)).json()[
        "windows"
    ]
    assert windows["24h"] == {"checks": 0, "up_checks": 0, "uptime_percent": None}


async def test_at_risk_from_day_25_and_deactivation_at_day_30(
    api, researcher, settings, wes_service, remote, db
):
    remote.routes[WES_PATH] = respond(500, b"{}")
    await _set(
        db,
        wes_service["id"],
        health_status=HealthStatus.UNHEALTHY,
        consecutive_failures=9000,
        first_unhealthy_at=utcnow() - timedelta(days=26),
        health_checked_at=utcnow() - timedelta(minutes=5),
    )
    body = (await api.get(f"/services/{wes_service['id']}", headers=researcher)).json()
    assert body["health"]["at_risk"] is True
    assert body["is_active"] is True
    await _set(db, wes_service["id"], first_unhealthy_at=utcnow() - timedelta(days=30, minutes=1))
    report = (await api.get(f"/services/{wes_service['id']}/health", headers=researcher)).json()
    assert report["is_active"] is False
    types = [e.event_type for e in (await db.scalars(select(OutboxEvent))).all()]
    assert types == ["service.deactivated"]


async def test_retention_prunes_old_checks(db, settings, wes_service):
    service_id = uuid.UUID(wes_service["id"])
    db.add_all(
        [
            ServiceHealthCheck(
                service_id=service_id,
                status=HealthStatus.HEALTHY,
                checked_at=utcnow() - timedelta(days=31),
            ),
            ServiceHealthCheck(
                service_id=service_id,
                status=HealthStatus.HEALTHY,
                checked_at=utcnow() - timedelta(days=29),
            ),
        ]
    )
    await db.commit()
    assert await health.prune_history(db, settings) == 1
    await db.commit()
    assert await db.scalar(select(func.count()).select_from(ServiceHealthCheck)) == 1


async def test_health_summary_for_monitoring_without_probing(
    api, researcher, token_issuer, wes_service, remote, db
):
    await _set(
        db,
        wes_service["id"],
        health_status=HealthStatus.UNHEALTHY,
        health_checked_at=utcnow() - timedelta(hours=2),
        last_error="connect timeout",
    )
    monitoring = bearer(token_issuer.service_token("monitoring", "service-registry"))
    response = await api.get("/internal/service-health", headers=monitoring)
    assert response.status_code == 200
    [summary] = response.json()
    assert summary["slug"] == wes_service["slug"]
    assert summary["status"] == "unhealthy"
    assert summary["error"] == "connect timeout"
    assert set(summary["uptime"]) == {"24h", "7d", "30d"}
    assert remote.hits.get(WES_PATH, 0) == 0  # stored state only: nothing probed


async def test_health_summary_is_for_monitoring_only(api, researcher, token_issuer):
    other = bearer(token_issuer.service_token("job-processor", "service-registry"))
    assert (await api.get("/internal/service-health", headers=other)).status_code == 403
    assert (await api.get("/internal/service-health", headers=researcher)).status_code == 401
