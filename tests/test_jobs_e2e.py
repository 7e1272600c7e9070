"""Issue 12, end to end through the gateway of a real fleet: a user uploads a VCF, stores their
Cloudgene token, pre-flights the file across the services, submits a job to the sandbox Cloudgene
simulator, watches it progress, cancels a second one, and downloads the results of the first
from file-manager (a plain zip: job-processor decrypted it with the job's own password)."""

import io
import secrets
import time
import zipfile

import httpx
import pytest

from sandbox.testdata import VcfSpec, make_vcf

pytestmark = pytest.mark.fleet
PASSWORD = "Correct-Horse-Battery-Staple-42"
SANDBOX_TOKEN = "cloudgene-token-alice"


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def user(api):
    name = f"jp{secrets.token_hex(3)}"
    # Its own client address: the login rate limit (per address) is the other tests' too.
    client = {"X-Forwarded-For": f"198.20.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        headers=client,
    )
    assert registered.status_code == 201, registered.text
    login = api.post("/api/auth/login", json={"login": name, "password": PASSWORD}, headers=client)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def michigan(api, user):
    service = api.get("/api/services/sandbox-michigan", headers=user).json()
    panels = api.get(
        "/api/reference-panels", params={"service_id": service["id"]}, headers=user
    ).json()["items"]
    panel = next(p for p in panels if p["is_available"] and p["build"] in (None, "hg19"))
    stored = api.put(
        f"/api/users/me/service-credentials/{service['id']}",
        json={"credential_type": "api_token", "token": SANDBOX_TOKEN},
        headers=user,
    )
    assert stored.status_code == 200, stored.text
    return service, panel


@pytest.fixture(scope="module")
def vcf_id(api, user):
    data = make_vcf(VcfSpec(samples=30, variants=60))
    uploaded = api.post(
        "/api/files",
        params={"filename": "chr20.vcf.gz", "build": "hg19"},
        content=data,
        headers=user | {"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    for _ in range(300):
        body = api.get(f"/api/files/{file_id}", headers=user).json()
        if body["status"] not in ("uploading", "validating"):
            break
        time.sleep(0.2)
    assert body["status"] == "valid", body.get("validation")
    return file_id


def submit(api, user, michigan, vcf_id, name):
    service, panel = michigan
    response = api.post(
        "/api/jobs",
        json={
            "name": name,
            "service": service["slug"],
            "panel": panel["slug"],
            "input_file_ids": [vcf_id],
            "build": "hg19",
            "phasing": "eagle",
            "tags": ["e2e"],
        },
        headers=user | {"Idempotency-Key": f"e2e-{name}"},
    )
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(api, user, job_id, statuses, timeout=240):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}", headers=user).json()
        point = (job["status"], job["progress"])
        if not seen or seen[-1] != point:
            seen.append(point)
        if job["status"] in statuses:
            return job, seen
        time.sleep(0.5)
    pytest.fail(f"job {job_id} still {seen[-1]} after {timeout} s: {seen}")


def test_preflight_names_what_fails_where(api, user, michigan, vcf_id):
    service, panel = michigan
    response = api.post(
        "/api/jobs/preflight",
        json={"input_file_ids": [vcf_id], "build": "hg19"},
        headers=user,
    )
    assert response.status_code == 200, response.text
    targets = response.json()["targets"]
    ours = next(
        t for t in targets if t["service_slug"] == service["slug"] and t["panel"] == panel["slug"]
    )
    assert ours["ok"], ours
    # the other services refuse for reasons they state (too few samples, panel build, profile)
    assert any(not t["ok"] and t["reasons"] for t in targets)


def test_submit_watch_cancel_and_download(api, user, michigan, vcf_id):
    first = submit(api, user, michigan, vcf_id, "e2e-complete")
    again = submit(api, user, michigan, vcf_id, "e2e-complete")  # same key, same body
    assert again["id"] == first["id"]
    second = submit(api, user, michigan, vcf_id, "e2e-cancel")

    job, _ = wait_for(api, user, second["id"], ("queued", "running"))
    cancelled = api.post(f"/api/jobs/{second['id']}/cancel", headers=user)
    assert cancelled.status_code == 202, cancelled.text
    job, _ = wait_for(api, user, second["id"], ("cancelled",), timeout=120)
    assert api.post(f"/api/jobs/{second['id']}/cancel", headers=user).status_code == 409

    job, seen = wait_for(api, user, first["id"], ("completed", "failed"))
    assert job["status"] == "completed", (job, seen)
    statuses = [s for s, _ in seen]
    assert "running" in statuses  # watched while it ran
    history = api.get(f"/api/jobs/{first['id']}/history", headers=user).json()
    assert [h["to_status"] for h in history][:3] == ["pending", "submitting", "queued"]
    assert history[-1]["to_status"] == "completed"
    steps = api.get(f"/api/jobs/{first['id']}/messages", headers=user).json()["steps"]
    assert any("Input Validation" in s for s in steps)

    results = api.get(f"/api/jobs/{first['id']}/results", headers=user).json()
    assert results["result_file_ids"]
    assert results["password"]
    names = {}
    for file_id in results["result_file_ids"]:
        meta = api.get(f"/api/files/{file_id}", headers=user).json()
        assert meta["kind"] in ("result", "report", "log")
        assert meta["job_id"] == first["id"]
        names[meta["filename"]] = file_id
    archive_name = next(n for n in names if n.endswith(".zip"))
    content = api.get(f"/api/files/{names[archive_name]}/content", headers=user)
    assert content.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(content.content))
    assert any(n.endswith(".dose.vcf.gz") for n in archive.namelist())
    archive.testzip()  # opens without a password

    stats = api.get("/api/jobs/stats", headers=user).json()
    assert stats["by_status"] == {"completed": 1, "cancelled": 1}
    listed = api.get("/api/jobs", params={"tag": "e2e"}, headers=user).json()["items"]
    assert {j["id"] for j in listed} == {first["id"], second["id"]}


def test_other_users_jobs_and_internal_routes_are_out_of_reach(api, user, michigan, vcf_id):
    other = api.post(
        "/api/auth/register",
        json={
            "username": f"x{secrets.token_hex(3)}",
            "email": f"x{secrets.token_hex(3)}@example.org",
            "password": PASSWORD,
        },
    )
    assert other.status_code == 201
    mine = api.get("/api/jobs", headers=user).json()["items"]
    assert mine
    login = api.post(
        "/api/auth/login", json={"login": other.json()["username"], "password": PASSWORD}
    )
    stranger = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert api.get(f"/api/jobs/{mine[0]['id']}", headers=stranger).status_code == 404
    assert api.get("/api/internal/jobs/stats", headers=user).status_code == 404
