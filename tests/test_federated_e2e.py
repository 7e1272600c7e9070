"""Real jobs through the gateway of a real fleet (nothing injected): sandbox-wes publishes its
panels in its service-info tags, the launcher's sync-panels imported them, so a hg38 file passes
preflight there and a job runs on it to completion; a federated batch on sandbox-michigan and
sandbox-wes completes, its owner's WebSocket receives the children's status changes as they
happen and the fleet's SMTP sink receives exactly one "completed" email per child."""

import asyncio
import json
import mailbox
import secrets
import time
from email import message_from_bytes, policy

import httpx
import pytest
from websockets.asyncio.client import connect

from file_manager.testdata import VcfSpec, vcf_bytes

pytestmark = pytest.mark.fleet
PASSWORD = "Correct-Horse-Battery-Staple-42"
WES_PANEL = "topmed-r3"  # hg38, published by sandbox-wes (all its panels: the "all" preset)


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=60) as client:
        yield client


def register(api):
    """A new account, its own client address (the login rate limit is per address) and the
    bearer headers; ``["email"]`` is where its mail goes."""
    name = f"fed{secrets.token_hex(3)}"
    client = {"X-Forwarded-For": f"198.19.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}
    email = f"{name}@example.org"
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": email, "password": PASSWORD},
        headers=client,
    )
    assert registered.status_code == 201, registered.text
    login = api.post("/api/auth/login", json={"login": name, "password": PASSWORD}, headers=client)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}, email


@pytest.fixture(scope="module")
def user(api):
    return register(api)[0]


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


def test_a_wes_target_passes_preflight(api, user):
    """The panel came from sandbox-wes's service-info tags (before, preflight refused every WES
    target: no panel). The batch test below runs a job there to completion."""
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
    hg19 = api.post(
        "/api/jobs/preflight",
        json={
            "input_file_ids": [hg38],
            "build": "hg19",
            "targets": [{"service": "sandbox-wes", "panel": WES_PANEL}],
        },
        headers=user,
    ).json()["targets"][0]
    assert "build_unsupported" in [r["code"] for r in hg19["reasons"]], hg19


# Cloudgene's two running jobs per user while this test runs.
MICHIGAN_TOKEN = "cloudgene-token-bob"


def completed_mails(fleet, address):
    """The "completed" emails the fleet's SMTP sink received for ``address``, by subject."""
    return [
        message["Subject"]
        for raw in mailbox.Maildir(fleet.mail_dir, create=False)
        if (message := message_from_bytes(bytes(raw), policy=policy.default))["To"] == address
        and message["Subject"].endswith("completed")
    ]


async def listen(ws, into):
    """Every job_status message of the socket, until cancelled."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "job_status":
            into.append(message)


async def test_a_batch_on_michigan_and_wes_completes_with_live_statuses_and_one_email_each(
    fleet, api
):
    owner, address = register(api)
    michigan = api.get("/api/services/sandbox-michigan", headers=owner).json()
    stored = api.put(
        f"/api/users/me/service-credentials/{michigan['id']}",
        json={"credential_type": "api_token", "token": MICHIGAN_TOKEN},
        headers=owner,
    )
    assert stored.status_code == 200, stored.text
    hg38 = upload(api, owner, "hg38")
    ticket = api.post("/api/notifications/ws/tickets", headers=owner)
    assert ticket.status_code == 201, ticket.text
    url = fleet.gateway.replace("http://", "ws://") + "/api/notifications/ws"
    statuses: list[dict] = []
    async with connect(f"{url}?ticket={ticket.json()['ticket']}") as ws:
        async with asyncio.timeout(30):
            assert json.loads(await ws.recv())["type"] == "ready"
        listener = asyncio.create_task(listen(ws, statuses))
        submitted = api.post(
            "/api/jobs/batch",
            json={
                "name": "chr20 federated",
                "input_file_ids": [hg38],
                "build": "hg38",
                "targets": [
                    {"service": "sandbox-michigan", "panel": WES_PANEL},
                    {"service": "sandbox-wes", "panel": WES_PANEL},
                ],
            },
            headers=owner,
        )
        assert submitted.status_code == 202, submitted.text
        path = f"/api/jobs/batches/{submitted.json()['id']}"
        async with httpx.AsyncClient(base_url=fleet.gateway, timeout=30) as client:
            deadline = time.monotonic() + 150
            while (batch := (await client.get(path, headers=owner)).json())["status"] not in (
                "completed",
                "partially_completed",
                "failed",
                "cancelled",
            ) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        children = {c["id"]: c for c in batch["children"]}
        assert batch["status"] == "completed", [
            (c["service_slug"], c["status"], c["status_message"]) for c in children.values()
        ]
        # the last status change of each child reaches the socket too
        for _ in range(60):
            done = {m["job_id"] for m in statuses if m["status"] == "completed"}
            if done >= set(children):
                break
            await asyncio.sleep(0.5)
        listener.cancel()
    by_job = {
        job_id: [m["status"] for m in statuses if m["job_id"] == job_id] for job_id in children
    }
    for job_id, seen in by_job.items():
        assert seen[-1] == "completed", (children[job_id]["service_slug"], seen)
        assert "running" in seen, seen  # watched live, not only the outcome
    assert {m["service_slug"] for m in statuses} == {"sandbox-michigan", "sandbox-wes"}

    names = sorted(c["name"] for c in children.values())
    expected = sorted(f"[FedImpute] Job “{name}” completed" for name in names)
    deadline = time.monotonic() + 60
    while sorted(completed_mails(fleet, address)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert sorted(completed_mails(fleet, address)) == expected
    await asyncio.sleep(3)  # a duplicate would have arrived by now
    assert sorted(completed_mails(fleet, address)) == expected
