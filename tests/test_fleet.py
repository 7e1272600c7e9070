"""`make up` end to end: the launcher started the fleet from scratch (embedded Postgres and
Redis, databases, migrations, services, simulators, the imputation node) and registered the
simulators and the node with their panels through the real API; every service answers."""

import json
import time

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
    assert f"imputation-node        {fleet.url(8110)}  panels: sim-ooa-chr20" in out
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
        "imputation-node": "CWL",
        "sandbox-michigan": None,
        "sandbox-starter-kit": "NEXTFLOW",
        "sandbox-wes": "WDL",
    }
    assert health == {
        "imputation-node": "healthy",
        "sandbox-michigan": "healthy",
        "sandbox-starter-kit": "healthy",
        "sandbox-wes": "healthy",
    }


def test_the_imputation_node_is_registered_with_its_panel_and_workflow_profile(fleet):
    """The registry read the node's panel from its service-info tags, and its profile points at
    the workflow the node serves."""
    token = httpx.post(
        f"{fleet.url(8001)}/auth/login", json={"login": "admin", "password": fleet.admin_password}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    info = httpx.get(f"{fleet.url(8110)}/ga4gh/wes/v1/service-info").json()
    [advertised] = json.loads(info["tags"]["fedimpute.reference_panels"])
    location = (fleet.var / "imputation-node" / "panels" / "sim-ooa-chr20").resolve().as_uri()
    assert (advertised["id"], advertised["location"]) == ("sim-ooa-chr20", location)
    service = httpx.get(f"{fleet.url(8002)}/services/imputation-node", headers=headers).json()
    workflow_url = service["workflow_profile"]["workflow_url"]
    assert workflow_url == f"{fleet.url(8110)}/workflows/fedimpute-imputation/1.0.0/imputation.cwl"
    assert httpx.get(workflow_url).status_code == 200
    panels = httpx.get(
        f"{fleet.url(8002)}/reference-panels", params={"service_id": service["id"]}, headers=headers
    ).json()["items"]
    assert [(p["remote_id"], p["build"], p["samples_count"]) for p in panels] == [
        ("sim-ooa-chr20", "hg38", 300)
    ]


def test_summary_shows_what_the_registry_holds_and_both_demo_logins(fleet):
    out = fleet.output
    assert "In the service registry now" in out
    # sandbox-wes publishes its panels in its service-info tags; sync-panels imported them
    assert (
        f"sandbox-wes            {fleet.url(8102)}  panels: 1000g-phase-3-v5, h3africa-v6hc-s,"
        " hrc-r1.1, topmed-r3  (healthy)" in out
    )
    keys = json.loads((fleet.var / "secrets.json").read_text())
    assert f"Demo logins:  admin / {keys['admin_password']}" in out
    assert f"researcher / {keys['researcher_password']}" in out


def test_the_demo_researcher_finds_sample_files_validated_one_with_a_failing_rule(fleet):
    keys = json.loads((fleet.var / "secrets.json").read_text())
    with httpx.Client(base_url=fleet.gateway, timeout=30) as api:
        login = api.post(
            "/api/auth/login", json={"login": "researcher", "password": keys["researcher_password"]}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = api.get("/api/files", headers=headers).json()["items"]
    # the uploads (the demo jobs' results are theirs too)
    files = {f["filename"]: f for f in listed if f["job_id"] is None}
    assert {name: f["status"] for name, f in files.items()} == {
        "demo_chr20_hg38.vcf.gz": "valid",
        "demo_chr22_hg19.vcf.gz": "valid",
        "demo_chr20_unsorted.vcf.gz": "invalid",
    }
    report = files["demo_chr20_unsorted.vcf.gz"]["validation"]
    assert "unsorted positions" in report["errors"][0]["message"]
    assert files["demo_chr22_hg19.vcf.gz"]["validation"]["build"]["detected"] == "hg19"
    assert "demo_chr20_unsorted.vcf.gz   invalid: Error: unsorted positions" in fleet.output


def test_the_runtime_directory_is_private_and_nothing_warns_about_it(fleet):
    assert (fleet.var / "run").stat().st_mode & 0o777 == 0o700
    assert "RuntimeDirWarning" not in fleet.output


def test_the_demo_researcher_finds_a_job_per_simulator_run_with_the_stored_token(fleet):
    """make up stored the sandbox Cloudgene token in the researcher's vault and submitted one job
    per simulator with the sample of the panel's build; they run to completion (the conftest
    fleet does not wait for them, so this test does)."""
    out = fleet.output
    assert "Jobs of researcher (one per simulator):" in out
    assert "(sandbox-michigan, 1000g-phase-3-v5, demo_chr22_hg19.vcf.gz)" in out
    assert "(sandbox-wes, topmed-r3, demo_chr20_hg38.vcf.gz)" in out
    keys = json.loads((fleet.var / "secrets.json").read_text())
    with httpx.Client(base_url=fleet.gateway, timeout=30) as api:
        login = api.post(
            "/api/auth/login", json={"login": "researcher", "password": keys["researcher_password"]}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        michigan = api.get("/api/services/sandbox-michigan", headers=headers).json()
        vault = api.get("/api/users/me/service-credentials", headers=headers).json()
        assert michigan["id"] in {c["service_id"] for c in vault}, vault
        files = {f["id"]: f for f in api.get("/api/files", headers=headers).json()["items"]}
        deadline = time.monotonic() + 180
        while True:
            jobs = {j["name"]: j for j in api.get("/api/jobs", headers=headers).json()["items"]}
            finished = all(
                j["status"] in ("completed", "failed", "cancelled") for j in jobs.values()
            )
            if finished or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert sorted(jobs) == ["demo-sandbox-michigan", "demo-sandbox-wes"]
    states = {name: (j["status"], j["status_message"]) for name, j in jobs.items()}
    assert {name: status for name, (status, _) in states.items()} == {
        "demo-sandbox-michigan": "completed",
        "demo-sandbox-wes": "completed",
    }, states
    # each on the sample whose build is its panel's
    for name, build in (("demo-sandbox-michigan", "hg19"), ("demo-sandbox-wes", "hg38")):
        [input_id] = jobs[name]["input_file_ids"]
        assert (jobs[name]["build"], files[input_id]["declared_build"]) == (build, build)
