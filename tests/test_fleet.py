"""`make up` end to end: the launcher started the fleet from scratch (embedded Postgres and
Redis, databases, migrations, services, simulators, the imputation node) and registered the
simulators and the node with their panels through the real API; every service answers."""

import json

import httpx
import pytest

from .conftest import PORT_OFFSET

pytestmark = pytest.mark.fleet

SERVICES = {"api-gateway": 8000, "user-service": 8001, "service-registry": 8002}


def test_summary_names_the_registered_simulators(fleet):
    out = fleet.output
    assert "FedImpute is up" in out
    assert f"sandbox-michigan       http://127.0.0.1:{8101 + PORT_OFFSET}  panels: " in out
    assert "h3africa-v6hc-s" in out
    assert (
        f"sandbox-starter-kit    http://127.0.0.1:{8103 + PORT_OFFSET}  panels: nextflow-21.04.0, wdl-1.0"
        in out
    )
    assert f"imputation-node        http://127.0.0.1:{8110 + PORT_OFFSET}  panels: " in out
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
    assert health == {
        "imputation-node": "healthy",
        "sandbox-michigan": "healthy",
        "sandbox-starter-kit": "healthy",
        "sandbox-wes": "healthy",
    }


def test_the_imputation_node_runs_beside_the_simulators_with_its_ci_panel(fleet):
    info = httpx.get(f"{fleet.url(8110)}/ga4gh/wes/v1/service-info").json()
    [panel] = json.loads(info["tags"]["fedimpute.reference_panels"])
    assert panel["id"] == "sim-ooa-chr20"
    assert (
        panel["location"]
        == (fleet.var / "imputation-node" / "panels" / "sim-ooa-chr20").resolve().as_uri()
    )
