"""The public status page: no login; the platform and each external service with status,
uptime and recent incidents; no error text or internal detail."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from fedimpute_shared.db import utcnow
from monitoring_service.models import Alert, AlertState, ExternalService, FleetCheck, FleetStatus

from .conftest import health_changed


async def test_status_needs_no_login_and_shows_everything_public(app, client, db, publish, consume):
    now = utcnow()
    wes = uuid.uuid5(uuid.NAMESPACE_DNS, "sandbox-wes")
    await publish(
        health_changed(
            "unhealthy", at=now - timedelta(hours=3), error="connect to 10.0.0.7 refused"
        )
    )
    await publish(health_changed("healthy", previous="unhealthy", at=now - timedelta(hours=2)))
    await publish(health_changed("timeout", previous="healthy", at=now - timedelta(minutes=5)))
    await consume()
    service = await db.get(ExternalService, wes)
    service.name = "Sandbox WES"
    service.uptime = {"24h": {"uptime_percent": 95.5}, "7d": {"uptime_percent": 99.0}}
    db.add(
        ExternalService(
            id=uuid.uuid4(),
            slug="retired",
            name="Retired",
            status="unhealthy",
            is_active=False,
            uptime={},
        )
    )
    for name in (
        "api-gateway",
        "user-service",
        "service-registry",
        "job-processor",
        "file-manager",
        "monitoring",
    ):
        db.add(
            FleetCheck(service=name, status=FleetStatus.UP, checked_at=now - timedelta(minutes=1))
        )
    db.add(
        FleetCheck(
            service="api-gateway", status=FleetStatus.DOWN, checked_at=now - timedelta(hours=1)
        )
    )
    db.add(
        Alert(
            rule="service-down",
            kind="service_down",
            severity="critical",
            subject="file-manager",
            summary="file-manager is down (3 checks)",
            state=AlertState.RESOLVED,
            started_at=now - timedelta(hours=1),
            resolved_at=now - timedelta(minutes=30),
        )
    )
    await db.commit()

    response = await client.get("/status")
    assert response.status_code == 200
    body = response.json()
    assert body["platform"]["status"] == "degraded"  # notification never checked
    assert body["platform"]["uptime"]["24h"] == 50.0  # the gateway: 1 of 2 checks up
    components = {c["name"]: c["status"] for c in body["platform"]["components"]}
    assert components["file-manager"] == "up"
    assert components["notification"] == "unknown"
    [wes_status] = body["services"]  # the retired one is not shown
    assert wes_status == {
        "slug": "sandbox-wes",
        "name": "Sandbox WES",
        "status": "timeout",
        "since": wes_status["since"],
        "uptime": {"24h": 95.5, "7d": 99.0, "30d": None},
    }
    kinds = [(i["kind"], i["subject"], i["status"], i["ongoing"]) for i in body["incidents"]]
    assert kinds == [
        ("external", "sandbox-wes", "timeout", True),
        ("platform", "file-manager", "down", False),
        ("external", "sandbox-wes", "unhealthy", False),
    ]
    assert "10.0.0.7" not in json.dumps(body)  # error texts stay in the admin views


async def test_status_with_nothing_known_yet(client):
    body = (await client.get("/status")).json()
    assert body["platform"]["status"] == "down"
    assert body["services"] == []
    assert body["incidents"] == []
    assert body["platform"]["uptime"] == {"24h": None, "7d": None, "30d": None}


async def test_the_page_is_built_at_most_once_per_cache_period(make_app, db):
    from fedimpute_shared.testing.client import app_client

    for seconds, expect_fresh in ((60, False), (0, True)):
        application = make_app(status_cache_seconds=seconds)
        async with app_client(application) as client:
            assert (await client.get("/status")).json()["services"] == []
            db.add(
                ExternalService(
                    id=uuid.uuid4(), slug=f"s{seconds}", name="S", status="healthy", uptime={}
                )
            )
            await db.commit()
            second = (await client.get("/status")).json()["services"]
            assert (len(second) == 1) is expect_fresh
        await db.execute(ExternalService.__table__.delete())
        await db.commit()
