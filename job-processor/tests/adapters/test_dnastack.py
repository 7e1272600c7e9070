"""The DNAstack adapter: OAuth2 client-credentials tokens (respx), and end to end against the
Workbench and cromwell-wes flavours of the sandbox WES simulator."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from job_processor.adapters import Adapters, adapter_for
from job_processor.adapters.base import (
    AuthFailed,
    Credentials,
    NotSubmittable,
    RemoteUnavailable,
)
from job_processor.adapters.dnastack import DnastackAdapter
from job_processor.adapters.ga4gh_wes import WesAdapter
from job_processor.adapters.michigan import MichiganAdapter
from service_registry.workflows.templates import TEMPLATES

from .helpers import input_file, job_spec, target, token, until_terminal, vcf_inputs

BASE = "https://workbench.example.org"
TOKEN_URL = "https://passport.example.org/oauth/token"
CLIENT = Credentials("client_credentials", {"client_id": "cid", "client_secret": "csecret"})
PROFILE = TEMPLATES["sandbox-imputation"].profile


def workbench(base=BASE, **auth):
    options = {"mode": "workbench", "namespace": "ns-1", "token_endpoint": TOKEN_URL} | auth
    return target("dnastack", base, protocol_options=options, workflow_profile=PROFILE)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@respx.mock
async def test_token_is_fetched_once_cached_until_expiry_and_dropped_on_401(client):
    clock = Clock()
    adapter = DnastackAdapter(client, clock=clock)
    tokens = respx.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(
                200, json={"access_token": f"t{i}", "token_type": "Bearer", "expires_in": 600}
            )
            for i in range(1, 5)
        ]
    )
    status = respx.get(f"{BASE}/ns-1/ga4gh/wes/v1/runs/r1").respond(
        200, json={"run_id": "r1", "state": "PREPROCESSING"}
    )
    service = workbench(scope="wes", resource="https://workbench.example.org/")
    results = await asyncio.gather(*(adapter.status(service, CLIENT, "r1") for _ in range(5)))
    assert {r.state for r in results} == {"queued"}
    assert tokens.call_count == 1  # five concurrent polls, one token request
    form = dict(x.split("=") for x in tokens.calls.last.request.content.decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert (form["client_id"], form["client_secret"], form["scope"]) == ("cid", "csecret", "wes")
    assert "resource" in form
    assert status.calls.last.request.headers["authorization"] == "Bearer t1"
    clock.now += 539  # renewed a minute before the 600 s expiry
    await adapter.status(service, CLIENT, "r1")
    assert tokens.call_count == 1
    clock.now += 2
    await adapter.status(service, CLIENT, "r1")
    assert tokens.call_count == 2
    assert status.calls.last.request.headers["authorization"] == "Bearer t2"
    # the API refuses the cached token: it is dropped and the call repeated with a new one
    status.side_effect = [
        httpx.Response(401),
        httpx.Response(200, json={"run_id": "r1", "state": "RUNNING"}),
    ]
    assert (await adapter.status(service, CLIENT, "r1")).state == "running"
    assert tokens.call_count == 3
    assert status.calls.last.request.headers["authorization"] == "Bearer t3"


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (
            httpx.Response(
                401, json={"error": "invalid_client", "error_description": "Bad client credentials"}
            ),
            AuthFailed,
            "Bad client credentials",
        ),
        (
            httpx.Response(400, json={"error": "unauthorized_client"}),
            AuthFailed,
            "unauthorized_client",
        ),
        (httpx.Response(503, text="busy"), RemoteUnavailable, "busy"),
        (httpx.Response(200, json={"token_type": "Bearer"}), RemoteUnavailable, "no access_token"),
        (httpx.Response(200, content=b"{"), RemoteUnavailable, "malformed JSON"),
        (httpx.ConnectTimeout("slow"), RemoteUnavailable, "in time"),
    ],
)
@respx.mock
async def test_token_endpoint_failures(client, answer, error, text):
    if isinstance(answer, Exception):
        respx.post(TOKEN_URL).mock(side_effect=answer)
    else:
        respx.post(TOKEN_URL).mock(return_value=answer)
    adapter = DnastackAdapter(client)
    with pytest.raises(error, match=text):
        await adapter.status(workbench(), CLIENT, "r1")
    if error is AuthFailed:
        check = await adapter.verify_credentials(workbench(), CLIENT)
        assert not check.ok
        assert text in check.message


async def test_missing_settings_and_secrets(client):
    adapter = DnastackAdapter(client)
    with pytest.raises(AuthFailed, match="token endpoint"):
        await adapter.status(workbench(token_endpoint=None), CLIENT, "r1")
    with pytest.raises(AuthFailed, match="client id and a secret"):
        await adapter.status(
            workbench(), Credentials("client_credentials", {"client_id": "x"}), "r1"
        )
    with pytest.raises(NotSubmittable, match="namespace"):
        await adapter.status(workbench(namespace=None), CLIENT, "r1")
    assert not (await adapter.verify_credentials(workbench(), Credentials.none())).ok
    attachment = target(
        "dnastack",
        BASE,
        protocol_options={"mode": "workbench", "namespace": "ns", "token_endpoint": TOKEN_URL},
        workflow_profile=PROFILE | {"input_delivery": "attachment"},
    )
    with pytest.raises(NotSubmittable, match="links only"):
        await adapter.submit(attachment, CLIENT, job_spec([input_file("a.vcf.gz", b"x")]))


@respx.mock
async def test_workbench_submit_is_json_on_the_namespaced_path(client):
    respx.post(TOKEN_URL).respond(200, json={"access_token": "tok", "expires_in": 60})
    runs = respx.post(f"{BASE}/ns-1/ga4gh/wes/v1/runs").respond(
        200, json={"run_id": "r9", "state": "PREPROCESSING"}
    )
    spec = job_spec([input_file("chr20.vcf.gz", b"x", url="https://files.example.org/s/1")])
    submitted = await DnastackAdapter(client).submit(workbench(), CLIENT, spec)
    assert submitted.remote_id == "r9"
    request = runs.calls.last.request
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["workflow_url"] == PROFILE["workflow_url"]
    assert body["workflow_params"]["input_vcf"] == ["https://files.example.org/s/1"]
    assert body["tags"]["fedimpute_job"] == spec.tag


def test_adapter_for_every_kind(client):
    assert isinstance(adapter_for("michigan", client), MichiganAdapter)
    assert type(adapter_for("ga4gh_wes", client)) is WesAdapter
    assert isinstance(adapter_for("dnastack", client), DnastackAdapter)
    with pytest.raises(NotSubmittable):
        adapter_for("tes", client)
    adapters = Adapters(client)
    assert adapters.get("dnastack") is adapters.get("dnastack")


# ---------------------------------------------------------------------------------- sandbox
async def test_workbench_simulator_end_to_end(sandbox_server, client, file_server):
    server = sandbox_server("wes", "dnastack-workbench", timings={"task_seconds": 0.1})
    client_info = server.info["clients"][0]
    creds = Credentials(
        "client_credentials",
        {"client_id": client_info["client_id"], "client_secret": client_info["client_secret"]},
    )
    service = target(
        "dnastack",
        server.base_url,
        protocol_options={
            "mode": "workbench",
            "namespace": server.info["prefix"].split("/")[1],
            "token_endpoint": f"{server.base_url}/oauth/token",
        },
        workflow_profile=PROFILE,
    )
    adapter = DnastackAdapter(client)
    assert (await adapter.verify_credentials(service, creds)).ok
    wrong = Credentials("client_credentials", {"client_id": "x", "client_secret": "y"})
    assert not (await adapter.verify_credentials(service, wrong)).ok
    spec = job_spec(vcf_inputs(file_server, "20"), r2_filter=0.0)
    submission = await adapter.submit(service, creds, spec)
    status, seen = await until_terminal(adapter, service, creds, submission.remote_id)
    assert status.state == "completed", status
    assert seen[0] == "PREPROCESSING"
    assert (await adapter.find(service, creds, spec)).remote_id == submission.remote_id
    results = {r.name for r in await adapter.results(service, creds, submission.remote_id)}
    assert "chr_20.zip" in results

    missing = input_file("chr20.vcf.gz", b"x", url=f"{file_server.url}/absent.vcf.gz")
    failed = await adapter.submit(service, creds, job_spec([missing]))
    status, _ = await until_terminal(adapter, service, creds, failed.remote_id)
    assert (status.state, status.remote_state) == ("failed", "PREPROCESSING_ERROR")
    assert "Could not download" in status.message

    server.admin.set(expired_tokens=True)
    with pytest.raises(AuthFailed):
        await adapter.status(service, creds, submission.remote_id)


async def test_cromwell_wes_simulator_with_a_bearer_token(sandbox_server, client, file_server):
    server = sandbox_server("wes", "dnastack-cromwell", timings={"task_seconds": 0.1})
    service = target(
        "dnastack", server.base_url, protocol_options={"mode": "cromwell"}, workflow_profile=PROFILE
    )
    adapter = DnastackAdapter(client)
    creds = token(server.tokens[0])
    assert (await adapter.verify_credentials(service, creds)).ok
    check = await adapter.verify_credentials(service, token("wrong"))
    assert not check.ok
    spec = job_spec(vcf_inputs(file_server, "20"), r2_filter=0.0)
    submission = await adapter.submit(service, creds, spec)  # JSON parts typed application/json
    status, _ = await until_terminal(adapter, service, creds, submission.remote_id)
    assert status.state == "completed", status
    from job_processor.adapters.base import RemoteNotFound

    with pytest.raises(RemoteNotFound, match="does not exist"):
        await adapter.status(service, creds, "no-such-run")
