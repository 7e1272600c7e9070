"""The dashboard: job figures and recent jobs from job-processor (service token; the caller's
own, everyone's for admins), external services with their queues; job-processor unreachable or
answering garbage is said explicitly, never an empty dashboard."""

from __future__ import annotations

import uuid

import httpx
import pytest

from fedimpute_shared.db import utcnow
from fedimpute_shared.testing.tokens import bearer
from monitoring_service.models import ExternalService

from .conftest import JOB_PROCESSOR

STATS = {
    "by_status": {"running": 2, "completed": 7, "failed": 1},
    "last_24h": {"completed": 6, "failed": 2, "cancelled": 1, "submitted": 9},
    "success_rate_24h": 0.75,
    "per_service": {"sandbox-wes": {"active": 2, "queued": 1, "failed_24h": 2}},
}


def recent_job(owner, name="chr20 run"):
    now = utcnow().isoformat()
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "status": "running",
        "service_slug": "sandbox-wes",
        "owner_id": str(owner),
        "created_at": now,
        "updated_at": now,
    }


@pytest.fixture
async def services(db):
    db.add_all(
        [
            ExternalService(
                id=uuid.uuid4(),
                slug="sandbox-wes",
                name="Sandbox WES",
                status="healthy",
                uptime={"24h": {"checks": 10, "up_checks": 9, "uptime_percent": 90.0}},
            ),
            ExternalService(
                id=uuid.uuid4(), slug="michigan", name="Michigan", status="unhealthy", uptime={}
            ),
            ExternalService(
                id=uuid.uuid4(),
                slug="old",
                name="Old",
                status="healthy",
                is_active=False,
                uptime={},
            ),
        ]
    )
    await db.commit()


async def test_a_user_sees_their_own_jobs_and_every_service(
    client, upstreams, services, user_token
):
    me = uuid.uuid4()
    stats = upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/stats").respond(json=STATS)
    recent = upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/recent").respond(
        json=[recent_job(me), recent_job(uuid.uuid4(), "someone else's")]
    )
    response = await client.get("/dashboard", headers=user_token(me))
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "mine"
    assert stats.calls.last.request.url.params["owner_id"] == str(me)
    assert recent.calls.last.request.url.params["owner_id"] == str(me)
    assert stats.calls.last.request.headers["authorization"] == "Bearer service-token"
    jobs = body["jobs"]
    assert jobs["available"] is True
    assert jobs["by_status"] == STATS["by_status"]
    assert jobs["throughput_24h"] == 9
    assert jobs["success_rate_24h"] == 0.75
    cards = {c["slug"]: c for c in body["services"]}
    assert set(cards) == {"sandbox-wes", "michigan"}  # active only
    assert cards["sandbox-wes"]["queue"] == {"active": 2, "queued": 1, "failed_24h": 2}
    assert cards["sandbox-wes"]["uptime_24h"] == 90.0
    assert cards["michigan"]["queue"] is None  # no job of mine there
    assert [j["name"] for j in body["recent_jobs"]["items"]] == [
        "chr20 run"
    ]  # never another user's


async def test_an_admin_sees_every_job(client, upstreams, admin):
    stats = upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/stats").respond(json=STATS)
    upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/recent").respond(
        json=[recent_job(uuid.uuid4()), recent_job(uuid.uuid4())]
    )
    body = (await client.get("/dashboard?recent=5", headers=admin)).json()
    assert body["scope"] == "all"
    assert "owner_id" not in stats.calls.last.request.url.params
    assert len(body["recent_jobs"]["items"]) == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.ConnectError("refused"), "job-processor is unreachable (ConnectError)"),
        (httpx.ReadTimeout("slow"), "job-processor is unreachable (ReadTimeout)"),
        (httpx.Response(500), "job-processor answered 500"),
        (httpx.Response(200, text="<html>not json"), "job-processor's answer could not be read"),
        (httpx.Response(200, json={"by_status": "x"}), "job-processor's answer could not be read"),
    ],
)
async def test_job_processor_unavailable_is_said_explicitly(
    client, upstreams, services, admin, answer, reason
):
    for path in ("stats", "recent"):
        route = upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/{path}")
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
    response = await client.get("/dashboard", headers=admin)
    assert response.status_code == 200  # the rest of the dashboard is still there
    body = response.json()
    assert body["jobs"] == {
        "available": False,
        "error": reason,
        "by_status": None,
        "last_24h": None,
        "throughput_24h": None,
        "success_rate_24h": None,
        "per_service": {},
    }
    assert body["recent_jobs"]["available"] is False
    assert {c["slug"] for c in body["services"]} == {"sandbox-wes", "michigan"}
    assert all(c["queue"] is None for c in body["services"])


async def test_dashboard_needs_a_login_with_monitoring_read(client, token_issuer):
    assert (await client.get("/dashboard")).status_code == 401
    no_scope = bearer(
        token_issuer.access_token(uuid.uuid4(), roles=("researcher",), scopes=["jobs:read"])
    )
    assert (await client.get("/dashboard", headers=no_scope)).status_code == 403
    service = bearer(token_issuer.service_token("job-processor", "monitoring"))
    assert (await client.get("/dashboard", headers=service)).status_code == 401


async def test_bad_recent_limit(client, admin):
    assert (await client.get("/dashboard?recent=0", headers=admin)).status_code == 422
    assert (await client.get("/dashboard?recent=abc", headers=admin)).status_code == 422


async def test_the_scraper_keeps_job_processors_figures_as_the_jobs_series(app, upstreams, db):
    from monitoring_service.telemetry.scrape import job_series

    route = upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/stats").respond(json=STATS)
    series, error = await job_series(app.state.clients.job_processor)
    assert error is None
    assert "owner_id" not in route.calls.last.request.url.params  # every owner's jobs
    assert series == {"finished_24h": 8.0, "queued": 1.0, "active": 2.0, "failure_rate_24h": 25.0}
    upstreams.get(f"{JOB_PROCESSOR}/internal/jobs/stats").respond(text="garbage")
    assert await job_series(app.state.clients.job_processor) == (
        {},
        "job-processor stats unavailable: ValidationError",
    )
