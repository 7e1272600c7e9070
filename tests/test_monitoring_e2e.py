"""Issue 13 (monitoring), end to end through the gateway of a real fleet: the public status
page needs no login; an admin sees every service up, the dashboard with job-processor's real
figures, and, when a sandbox service starts failing, an alert that resolves once it recovers —
the status page showing the incident meanwhile."""

import secrets
import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.fleet
PASSWORD = "Correct-Horse-Battery-Staple-42"


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=30) as client:
        yield client


def client_address() -> dict[str, str]:
    """Its own client address: the login rate limit (per address) is the other tests' too."""
    return {"X-Forwarded-For": f"198.19.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}


@pytest.fixture(scope="module")
def admin(api, fleet):
    response = api.post(
        "/api/auth/login",
        json={"login": "admin", "password": fleet.admin_password},
        headers=client_address(),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def researcher(api):
    name = f"mon{secrets.token_hex(3)}"
    where = client_address()
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        headers=where,
    )
    assert registered.status_code == 201, registered.text
    login = api.post("/api/auth/login", json={"login": name, "password": PASSWORD}, headers=where)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def eventually(fetch, done, within=60.0):
    deadline, last = time.monotonic() + within, None
    while time.monotonic() < deadline:
        last = fetch()
        if done(last):
            return last
        time.sleep(0.5)
    pytest.fail(f"not reached within {within} s; last: {last}")


def test_every_service_is_watched_and_up(api, admin):
    body = eventually(
        lambda: api.get("/api/monitoring/health", headers=admin).json(),
        lambda b: b.get("status") == "healthy",
    )
    names = {s["service"] for s in body["services"]}
    assert {
        "api-gateway",
        "user-service",
        "service-registry",
        "file-manager",
        "notification",
        "monitoring",
    } <= names
    assert all(s["status"] == "up" for s in body["services"])


def test_operators_views_are_for_admins(api, researcher):
    assert api.get("/api/monitoring/health").status_code == 401
    assert api.get("/api/monitoring/alerts", headers=researcher).status_code == 403


def test_dashboard_with_job_processors_figures(api, admin, researcher):
    mine = api.get("/api/dashboard", headers=researcher)
    assert mine.status_code == 200, mine.text
    assert mine.json()["scope"] == "mine"
    body = eventually(
        lambda: api.get("/api/dashboard", headers=admin).json(),
        lambda b: {s["slug"] for s in b.get("services", [])} >= {"sandbox-wes", "sandbox-michigan"},
    )
    assert body["scope"] == "all"
    assert body["jobs"]["available"] is True, body["jobs"]
    assert isinstance(body["jobs"]["by_status"], dict)
    assert body["recent_jobs"]["available"] is True


def test_a_failing_sandbox_service_raises_an_alert_that_resolves(api, admin, fleet):
    faults = f"{fleet.url(8102)}/_sandbox/faults"  # sandbox-wes
    public = api.get("/api/status")  # no token
    assert public.status_code == 200
    assert public.json()["platform"]["status"] in ("healthy", "degraded")
    try:
        assert (
            httpx.put(faults, json={"error_rate": 1.0, "error_statuses": [503]}).status_code == 200
        )
        # the registry marks a service unhealthy after consecutive failed checks
        eventually(
            lambda: api.post("/api/services/sandbox-wes/health/check", headers=admin).json(),
            lambda b: b["status"] == "unhealthy",
        )

        def unresolved():
            items = api.get("/api/monitoring/alerts", headers=admin).json()["items"]
            return [a for a in items if a["subject"] == "sandbox-wes" and a["state"] != "resolved"]

        [alert] = eventually(unresolved, bool)
        assert alert["rule"] == "external-service-unhealthy"
        status = api.get("/api/status").json()
        wes = next(s for s in status["services"] if s["slug"] == "sandbox-wes")
        assert wes["status"] == "unhealthy"
        assert any(i["subject"] == "sandbox-wes" and i["ongoing"] for i in status["incidents"])
        ack = api.post(f"/api/monitoring/alerts/{alert['id']}/acknowledge", headers=admin)
        assert ack.json()["state"] == "acknowledged"
    finally:
        httpx.delete(faults)
    eventually(
        lambda: api.post("/api/services/sandbox-wes/health/check", headers=admin).json(),
        lambda b: b["status"] == "healthy",
    )
    resolved = eventually(
        lambda: api.get(f"/api/monitoring/alerts/{alert['id']}", headers=admin).json(),
        lambda a: a["state"] == "resolved",
    )
    assert resolved["resolve_reason"] == "cleared"
    status = api.get("/api/status").json()
    assert next(s for s in status["services"] if s["slug"] == "sandbox-wes")["status"] == "healthy"
    incident = next(i for i in status["incidents"] if i["subject"] == "sandbox-wes")
    assert incident["ongoing"] is False
    assert uuid.UUID(alert["id"])
