"""External services: status from the registry's events (a consumer group on the stream) and
its API (the sync); incidents; unknown and malformed events dead-lettered, the consumer going on."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import FileValidated, ServiceDeactivated
from monitoring_service.models import (
    DeadLetter,
    ExternalService,
    ExternalStatusChange,
    ProcessedEvent,
)

from .conftest import REGISTRY, health_changed

WES = uuid.uuid5(uuid.NAMESPACE_DNS, "sandbox-wes")


async def count(db, model):
    return await db.scalar(select(func.count()).select_from(model))


async def test_health_changed_events_make_the_current_status_and_the_incidents(
    app, client, admin, publish, consume, db
):
    start = utcnow() - timedelta(minutes=10)
    await publish(health_changed("unhealthy", at=start))
    await publish(health_changed("healthy", previous="unhealthy", at=start + timedelta(minutes=4)))
    await publish(health_changed("timeout", previous="healthy", at=start + timedelta(minutes=8)))
    assert await consume() == 3
    body = (await client.get("/monitoring/external", headers=admin)).json()
    [service] = body["services"]
    assert service["slug"] == "sandbox-wes"
    assert service["status"] == "timeout"
    ongoing, ended = body["incidents"]
    assert (ongoing["status"], ongoing["ongoing"]) == ("timeout", True)
    assert (ended["status"], ended["ongoing"]) == ("unhealthy", False)
    assert ended["error"] == "connect timeout"


async def test_the_same_event_twice_is_processed_once(app, publish, consume, db):
    event = health_changed("unhealthy")
    await publish(event)
    await publish(event)
    assert await consume() == 2
    assert await count(db, ExternalStatusChange) == 1
    assert await count(db, ProcessedEvent) == 1


async def test_a_late_older_event_does_not_overwrite_a_newer_status(app, publish, consume, db):
    now = utcnow()
    await publish(health_changed("healthy", previous="unhealthy", at=now))
    await publish(health_changed("unhealthy", at=now - timedelta(minutes=5)))
    await consume()
    service = await db.get(ExternalService, WES)
    assert service.status == "healthy"
    assert await count(db, ExternalStatusChange) == 2  # both kept in the history


async def test_deactivated_service_is_marked_inactive(app, publish, consume, db):
    await publish(health_changed("unhealthy"))
    await publish(
        ServiceDeactivated(
            producer="service-registry", service_id=WES, service_slug="sandbox-wes", reason="gone"
        )
    )
    await consume()
    assert (await db.get(ExternalService, WES)).is_active is False


async def test_unknown_and_malformed_events_are_dead_lettered_and_the_consumer_goes_on(
    app, client, admin, publish, consume, db
):
    event = health_changed("unhealthy")
    await publish(
        {"event_id": str(uuid.uuid4()), "event_type": "x", "version": "1", "payload": "not json"}
    )
    unknown_id = str(uuid.uuid4())
    await publish(
        {
            "event_id": unknown_id,
            "event_type": "billing.invoice_paid",
            "version": "1",
            "payload": json.dumps(
                {
                    "event_id": unknown_id,
                    "event_type": "billing.invoice_paid",
                    "api_token": "s3cr3t",
                }
            ),
        }
    )
    newer = event_fields_with_version(health_changed("unhealthy", slug="other"), 7)
    await publish(newer)
    invalid = event_fields_with_payload(health_changed("unhealthy", slug="bad"), status="on fire")
    await publish(invalid)
    await publish(
        FileValidated(
            producer="file-manager",
            file_id=uuid.uuid4(),
            owner_id=uuid.uuid4(),
            filename="a.vcf.gz",
            status="valid",
        )
    )
    await publish(event)
    assert await consume() == 6
    assert (await db.get(ExternalService, WES)).status == "unhealthy"  # the good one went through
    reasons = sorted(letter.reason for letter in (await db.scalars(select(DeadLetter))).all())
    assert len(reasons) == 4  # the file event is ignored, not dead-lettered
    assert any(r.startswith("malformed entry: the payload is not JSON") for r in reasons)
    assert "unknown event type 'billing.invoice_paid' version 1" in reasons
    assert "unknown event type 'service.health_changed' version 7" in reasons
    assert any("status" in r and "on fire" not in r for r in reasons if r.startswith("the payload"))
    listed = (await client.get("/monitoring/dead-letters", headers=admin)).json()["items"]
    assert len(listed) == 4
    assert all("payload" not in item["fields"] for item in listed)
    assert "s3cr3t" not in json.dumps(listed)
    assert app.state.consumer._errors == {}


def event_fields_with_version(event, version):
    from fedimpute_shared.outbox import event_fields

    fields = event_fields(event)
    payload = json.loads(fields["payload"]) | {"version": version}
    return fields | {"version": str(version), "payload": json.dumps(payload)}


def event_fields_with_payload(event, **changes):
    from fedimpute_shared.outbox import event_fields

    fields = event_fields(event)
    return fields | {"payload": json.dumps(json.loads(fields["payload"]) | changes)}


def summary(service_id, slug, status, **extra):
    return {
        "id": str(service_id),
        "slug": slug,
        "name": slug.upper(),
        "kind": "ga4gh_wes",
        "is_active": True,
        "status": status,
        "checked_at": utcnow().isoformat(),
        "response_time_ms": 10.0,
        "error": None,
        "consecutive_failures": 0,
        "first_unhealthy_at": None,
        "uptime": {"24h": {"checks": 10, "up_checks": 9, "uptime_percent": 90.0}},
    } | extra


async def test_sync_brings_names_uptime_and_missed_changes(
    app, client, admin, upstreams, publish, consume, db
):
    await publish(health_changed("healthy", previous="unknown", at=utcnow() - timedelta(hours=1)))
    await consume()
    gone = uuid.uuid4()
    db.add(ExternalService(id=gone, slug="gone", name="Gone", status="healthy", uptime={}))
    await db.commit()
    route = upstreams.get(f"{REGISTRY}/internal/service-health").respond(
        json=[
            summary(WES, "sandbox-wes", "unhealthy", error="502 from service-info"),
            summary(uuid.uuid4(), "michigan", "healthy"),
        ]
    )
    response = await client.post("/monitoring/external/sync", headers=admin)
    assert response.status_code == 200
    assert route.calls.last.request.headers["authorization"] == "Bearer service-token"
    by_slug = {s["slug"]: s for s in response.json()["services"]}
    assert by_slug["sandbox-wes"]["name"] == "SANDBOX-WES"
    assert by_slug["sandbox-wes"]["status"] == "unhealthy"  # the event for it was missed
    assert by_slug["sandbox-wes"]["uptime"]["24h"]["uptime_percent"] == 90.0
    assert by_slug["michigan"]["status"] == "healthy"
    assert by_slug["gone"]["is_active"] is False
    [incident] = response.json()["incidents"]
    assert (incident["slug"], incident["ongoing"]) == ("sandbox-wes", True)


async def test_sync_with_the_registry_down_keeps_the_last_state(
    app, client, admin, upstreams, publish, consume
):
    await publish(health_changed("unhealthy"))
    await consume()
    upstreams.get(f"{REGISTRY}/internal/service-health").mock(
        side_effect=httpx.ConnectError("refused")
    )
    response = await client.post("/monitoring/external/sync", headers=admin)
    assert response.status_code == 503
    assert response.json()["detail"] == "the registry is unavailable: ConnectError"
    body = (await client.get("/monitoring/external", headers=admin)).json()
    assert body["services"][0]["status"] == "unhealthy"


async def test_sync_skips_malformed_entries(app, client, admin, upstreams):
    upstreams.get(f"{REGISTRY}/internal/service-health").respond(
        json=[
            {"id": "not-a-uuid", "slug": "x", "name": "x", "status": "healthy"},
            42,
            summary(WES, "sandbox-wes", "healthy"),
        ]
    )
    response = await client.post("/monitoring/external/sync", headers=admin)
    assert [s["slug"] for s in response.json()["services"]] == ["sandbox-wes"]
    upstreams.get(f"{REGISTRY}/internal/service-health").respond(json={"not": "a list"})
    assert (await client.post("/monitoring/external/sync", headers=admin)).status_code == 503


async def test_external_views_are_for_admins(client, user_token):
    researcher = user_token(uuid.uuid4())
    assert (await client.get("/monitoring/external", headers=researcher)).status_code == 403
    assert (await client.get("/monitoring/dead-letters", headers=researcher)).status_code == 403
