"""`make up` end to end: the launcher started the fleet from scratch (embedded Postgres and
Redis, databases, migrations, services, simulators) and registered the simulators with their
panels through the real API; every service answers."""

import httpx
import pytest

pytestmark = pytest.mark.fleet

SERVICES = {"api-gateway": 8000, "user-service": 8001, "service-registry": 8002}


def test_summary_names_the_registered_simulators(fleet):
    out = fleet.output
    assert "FedImpute is up" in out
    assert f"sandbox-michigan       {fleet.url(8101)}  panels: " in out
    assert "h3africa-v6hc-s" in out
    assert f"sandbox-starter-kit    {fleet.url(8103)}  workflows: NEXTFLOW 21.04.0, WDL 1.0" in out
    assert (fleet.var / "secrets.json").exists()


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_ready(fleet, name):
    response = httpx.get(f"{fleet.url(SERVICES[name])}/ready")
    assert response.status_code == 200, response.text


def test_registry_health_checked_the_simulators(fleet):
    token = httpx.post(
        f"{fleet.url(8001)}/auth/login", json={"login": "admin", "password": fleet.admin_password}
    ).json()["access_token"]
    services = httpx.get(
        f"{fleet.url(8002)}/services", headers={"Authorization": f"Bearer {token}"}
    ).json()["items"]
    health = {s["slug"]: s["health"]["status"] for s in services}
    profiles = {s["slug"]: (s["workflow_profile"] or {}).get("workflow_type") for s in services}
    assert profiles == {
        "sandbox-michigan": None,
        "sandbox-starter-kit": "NEXTFLOW",
        "sandbox-wes": "WDL",
    }
    assert health == {
        "sandbox-michigan": "healthy",
        "sandbox-starter-kit": "healthy",
        "sandbox-wes": "healthy",
    }
