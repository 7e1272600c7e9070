"""Real jobs on the fleet's WES simulator, through the gateway: sandbox-wes publishes its panels in
its service-info tags, the launcher's sync-panels imported them, so a hg38 file passes preflight
there and a job runs on it to completion."""

import secrets
import time

import httpx
import pytest

from file_manager.testdata import VcfSpec, vcf_bytes

pytestmark = pytest.mark.fleet
PASSWORD = "Correct-Horse-Battery-Staple-42"
WES_PANEL = "topmed-r3"  # hg38, published by sandbox-wes (all its panels: the "all" preset)


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def user(api):
    name = f"fed{secrets.token_hex(3)}"
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    login = api.post("/api/auth/login", json={"login": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def upload(api, user, build, samples=30):
    data = vcf_bytes(VcfSpec(samples=samples, variants=200, build=build, seed=5))
    uploaded = api.post(
        "/api/files",
        params={"filename": f"chr20_{build}.vcf.gz", "build": build, "wait": "true"},
        content=data,
        headers=user | {"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["status"] == "valid", uploaded.json().get("validation")
    return uploaded.json()["id"]


def wait_finished(api, user, path, timeout=150):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(path, headers=user).json()
        if body["status"] in ("completed", "failed", "cancelled", "partially_completed"):
            return body
        time.sleep(0.5)
    pytest.fail(f"{path} still {body['status']} after {timeout} s: {body}")


def test_a_wes_job_passes_preflight_and_runs_to_completion(api, user):
    hg38 = upload(api, user, "hg38")
    checked = api.post(
        "/api/jobs/preflight",
        json={
            "input_file_ids": [hg38],
            "build": "hg38",
            "targets": [{"service": "sandbox-wes", "panel": WES_PANEL}],
        },
        headers=user,
    )
    assert checked.status_code == 200, checked.text
    [target] = checked.json()["targets"]
    assert (target["service_slug"], target["ok"]) == ("sandbox-wes", True), target

    submitted = api.post(
        "/api/jobs",
        json={
            "name": "wes-e2e",
            "service": "sandbox-wes",
            "panel": WES_PANEL,
            "input_file_ids": [hg38],
            "build": "hg38",
        },
        headers=user,
    )
    assert submitted.status_code == 202, submitted.text
    job = wait_finished(api, user, f"/api/jobs/{submitted.json()['id']}")
    assert job["status"] == "completed", (job["status_message"], job["remote_state"])
    results = api.get(f"/api/jobs/{job['id']}/results", headers=user).json()
    assert results["result_file_ids"], results
