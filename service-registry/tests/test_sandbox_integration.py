"""The registry against the sandbox simulators (real HTTP, independent implementations):
health probes of every flavour, fault knobs seen as the right status, and sync-panels from a
Cloudgene app form."""

import pytest

from fedimpute_shared.testing.client import app_client

from .conftest import service_body


@pytest.fixture
async def api(make_app, db):
    async with app_client(
        make_app(allow_private_urls=True, on_demand_reuse_seconds=0, health_check_timeout_seconds=1)
    ) as c:
        yield c


async def register(api, admin, sim, **overrides):
    body = service_body(slug=f"sim-{sim.kind}-{sim.flavour}", base_url=sim.base_url, **overrides)
    response = await api.post("/services", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"]


WES_OVERRIDES = {
    "kind": "ga4gh_wes",
    "cloudgene_app_id": None,
    "requires_credentials": False,
    "credential_type": "none",
}


@pytest.mark.parametrize(
    ("kind", "flavour", "overrides"),
    [
        ("michigan", "cg3", {}),
        ("michigan", "cg2", {"cloudgene_app_id": "imputationserver"}),
        ("wes", "spec", WES_OVERRIDES),
        ("wes", "starter-kit", WES_OVERRIDES),
        (
            "wes",
            "dnastack-cromwell",
            WES_OVERRIDES | {"kind": "dnastack", "protocol_options": {"mode": "cromwell"}},
        ),
    ],
)
async def test_every_simulator_is_healthy(api, admin, sandbox_server, kind, flavour, overrides):
    sim = sandbox_server(kind, flavour=flavour)
    service_id = await register(api, admin, sim, **overrides)
    report = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
    assert report["status"] == "healthy", report


async def test_workbench_namespace_is_probed(api, admin, sandbox_server):
    sim = sandbox_server("wes", flavour="dnastack-workbench")
    namespace = (
        sim.api_url.removeprefix(sim.base_url)
        .strip("/")
        .removesuffix("/ga4gh/wes/v1")
        .removesuffix("ga4gh/wes/v1")
        .strip("/")
    )
    assert namespace
    service_id = await register(
        api,
        admin,
        sim,
        **WES_OVERRIDES
        | {"kind": "dnastack", "protocol_options": {"mode": "workbench", "namespace": namespace}},
    )
    report = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
    assert report["status"] == "healthy", report


@pytest.mark.parametrize(
    ("knobs", "status"),
    [
        ({"error_rate": 1.0, "error_statuses": [503]}, "unhealthy"),
        ({"malformed_json": True}, "unhealthy"),
        ({"outage": "refuse"}, "unhealthy"),
        ({"outage": "hang"}, "timeout"),
    ],
    ids=["http-503", "malformed-json", "refused", "hanging"],
)
async def test_faults_turn_into_the_right_status_after_two_failures(
    api, admin, sandbox_server, knobs, status
):
    sim = sandbox_server("michigan", flavour="cg3")
    service_id = await register(api, admin, sim)
    assert (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()[
        "status"
    ] == "healthy"
    sim.admin.set(**knobs)
    statuses = [
        (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()["status"]
        for _ in range(2)
    ]
    sim.admin.reset()
    assert statuses == ["healthy", status]
    assert (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()[
        "status"
    ] == "healthy"


async def test_slow_simulator_is_degraded(make_app, admin, db, sandbox_server):
    sim = sandbox_server("wes", flavour="spec")
    async with app_client(make_app(allow_private_urls=True, degraded_after_ms=100)) as api:
        service_id = await register(api, admin, sim, **WES_OVERRIDES)
        sim.admin.set(latency_ms=300)
        report = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
    assert report["status"] == "degraded"
    assert "slow" in report["error"]


async def test_sync_against_the_strict_cloudgene_simulator(api, admin, sandbox_server):
    sim = sandbox_server("michigan", flavour="cg3")
    service_id = await register(api, admin, sim, cloudgene_app_id=None)
    anonymous = await api.post(f"/services/{service_id}/sync-panels", headers=admin)
    assert anonymous.status_code == 400
    assert "cloudgene_token" in anonymous.json()["detail"]
    response = await api.post(
        f"/services/{service_id}/sync-panels",
        json={"cloudgene_token": sim.users[0].token},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["cloudgene_app_id"], report["cloudgene_app_version"]) == (
        "imputationserver2",
        "2.0.12",
    )
    panels = {
        p["slug"]: p
        for p in (
            await api.get("/reference-panels", params={"service_id": service_id}, headers=admin)
        ).json()["items"]
    }
    h3 = panels["h3africa-v6hc-s"]
    assert (h3["remote_id"], h3["version"]) == ("apps@h3africa-v6hc-s@1.0.0", "1.0.0")
    assert "afr" in [x.lower() for x in h3["populations"]], h3


async def test_cloudgene_in_maintenance_is_degraded(api, admin, sandbox_server):
    sim = sandbox_server("michigan", flavour="cg3", maintenance=True)
    service_id = await register(api, admin, sim)
    report = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
    assert report["status"] == "degraded"
    assert report["error"].startswith("in maintenance")


async def test_panels_published_by_the_spec_wes_simulator_are_imported(api, admin, sandbox_server):
    sim = sandbox_server("wes", flavour="spec")
    service_id = await register(api, admin, sim, **WES_OVERRIDES)
    report = (await api.post(f"/services/{service_id}/sync-panels", headers=admin)).json()
    assert sorted(report["created"]) == [
        "1000g-phase-3-v5",
        "h3africa-v6hc-s",
        "hrc-r1.1",
        "topmed-r3",
    ], report
    assert report["skipped"] == []
    assert report["supported_builds"] == ["hg19", "hg38"]
    listed = await api.get("/reference-panels", params={"service_id": service_id}, headers=admin)
    panels = {p["slug"]: p for p in listed.json()["items"]}
    topmed = panels["topmed-r3"]
    assert (topmed["remote_id"], topmed["build"], topmed["is_available"]) == (
        "topmed-r3",
        "hg38",
        True,
    )


async def test_capabilities_from_the_starter_kit(api, admin, sandbox_server):
    sim = sandbox_server("wes", flavour="starter-kit")
    service_id = await register(api, admin, sim, **WES_OVERRIDES)
    report = (await api.post(f"/services/{service_id}/sync-panels", headers=admin)).json()
    assert report["created"] == []
    assert report["capabilities"]["workflow_type_versions"] == {
        "WDL": ["1.0"],
        "NEXTFLOW": ["21.04.0"],
    }
    assert report["capabilities"]["api_url"] == sim.api_url
    profile = await api.put(
        f"/services/{service_id}/workflow-profile",
        json={"template": "starter-kit-flagstat"},
        headers=admin,
    )
    assert profile.status_code == 200, profile.text
