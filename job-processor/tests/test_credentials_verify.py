"""POST /credentials/{service}/verify against the sandbox simulators: the stored credentials
tried on the service itself (Cloudgene token check, DNAstack token endpoint, a WES call that
needs auth), the outcome recorded in the vault; an unreachable service records nothing."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from .conftest import USERS


@pytest.fixture
def app(make_app):
    """The simulators listen on loopback, which only ALLOW_PRIVATE_URLS lets adapters reach."""
    return make_app(allow_private_urls=True)


@pytest.fixture
def vault_reports(world):
    """What job-processor records in the vault: (user id, service id, ok)."""
    reports: list[tuple[str, str, bool]] = []

    def report(request: httpx.Request, user_id: str, service_id: str) -> httpx.Response:
        if (user_id, service_id) not in world.credentials:
            return httpx.Response(404)
        reports.append((user_id, service_id, json.loads(request.content)["ok"]))
        return httpx.Response(204)

    world.mock.post(
        url__regex=rf"{USERS}/internal/users/(?P<user_id>[^/]+)/service-credentials/(?P<service_id>[^/]+)/verification$"
    ).mock(side_effect=report)
    return reports


def cloudgene(world, server):
    return world.add_service(
        id=str(uuid.uuid4()),
        slug=f"cg-{uuid.uuid4().hex[:6]}",
        base_url=server.base_url,
        cloudgene_app_id=server.info["app_ids"][0],
    )


async def verify(client, user, service):
    return await client.post(f"/credentials/{service['slug']}/verify", headers=user.headers)


@pytest.mark.parametrize("flavour", ["cg3", "cg2"])
async def test_a_cloudgene_token_is_checked_on_the_server_and_recorded(
    client, world, alice, vault_reports, sandbox_server, flavour
):
    server = sandbox_server("michigan", flavour)
    service = cloudgene(world, server)
    world.store_credentials(alice.id, service, secret={"token": server.users[0].token})
    response = await verify(client, alice, service)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ok"], body["recorded"]) == (True, True)
    assert body["service_id"] == service["id"]
    assert vault_reports == [(str(alice.id), service["id"], True)]
    assert server.users[0].token not in response.text  # never echoed


async def test_a_wrong_cloudgene_token_is_reported_and_recorded_as_failing(
    client, world, alice, vault_reports, sandbox_server
):
    server = sandbox_server("michigan", "cg3")
    service = cloudgene(world, server)
    world.store_credentials(alice.id, service, secret={"token": "expired-or-wrong"})
    response = await verify(client, alice, service)
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert response.json()["message"]
    assert vault_reports == [(str(alice.id), service["id"], False)]


async def test_dnastack_client_credentials_are_checked_at_the_token_endpoint(
    client, world, alice, bob, vault_reports, sandbox_server
):
    server = sandbox_server("wes", "dnastack-workbench")
    pair = server.info["clients"][0]
    service = world.add_service(
        id=str(uuid.uuid4()),
        slug="dnastack",
        kind="dnastack",
        base_url=server.base_url,
        credential_type="oauth_client_credentials",
        protocol_options={
            "mode": "workbench",
            "namespace": server.info["prefix"].split("/")[1],
            "token_endpoint": f"{server.base_url}/oauth/token",
        },
    )
    kind = "oauth_client_credentials"
    world.store_credentials(
        alice.id,
        service,
        kind,
        {"client_id": pair["client_id"], "client_secret": pair["client_secret"]},
    )
    world.store_credentials(bob.id, service, kind, {"client_id": "x", "client_secret": "y"})
    assert (await verify(client, alice, service)).json()["ok"] is True
    assert (await verify(client, bob, service)).json()["ok"] is False
    assert [r[2] for r in vault_reports] == [True, False]


async def test_a_wes_bearer_token_is_checked_with_a_call_that_needs_auth(
    client, world, alice, bob, vault_reports, sandbox_server
):
    server = sandbox_server("wes", "spec", tokens=["node-token"])
    service = world.add_service(
        id=str(uuid.uuid4()),
        slug="ilifu",
        kind="ga4gh_wes",
        base_url=server.base_url,
        api_url=server.api_url,
        credential_type="bearer_token",
        workflow_profile={"workflow_url": "imputation.cwl", "params": {}},
    )
    world.store_credentials(alice.id, service, "bearer_token", {"token": "node-token"})
    world.store_credentials(bob.id, service, "bearer_token", {"token": "stolen"})
    good = await verify(client, alice, service)
    assert good.json()["ok"] is True, good.text
    bad = await verify(client, bob, service)
    assert bad.json()["ok"] is False
    assert [r[2] for r in vault_reports] == [True, False]


async def test_an_unreachable_service_is_a_503_and_nothing_is_recorded(
    client, world, alice, vault_reports, sandbox_server
):
    server = sandbox_server("michigan", "cg3")
    service = cloudgene(world, server)
    world.store_credentials(alice.id, service, secret={"token": server.users[0].token})
    server.admin.set(outage="refuse")
    response = await verify(client, alice, service)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "nothing was recorded" in response.json()["detail"]
    assert vault_reports == []


async def test_no_stored_credentials_or_no_such_service_is_a_404(
    client, world, alice, vault_reports, sandbox_server
):
    server = sandbox_server("michigan", "cg3")
    service = cloudgene(world, server)
    missing = await verify(client, alice, service)
    assert missing.status_code == 404
    assert "no credentials stored" in missing.json()["detail"]
    unknown = await client.post("/credentials/nowhere/verify", headers=alice.headers)
    assert unknown.status_code == 404
    bad_ref = await client.post("/credentials/a%20b/verify", headers=alice.headers)
    assert bad_ref.status_code == 422
    assert vault_reports == []


async def test_a_token_without_the_credentials_scope_is_refused(client, world, make_user):
    user = make_user(scopes=["jobs:read", "jobs:write"])
    service = world.add_service()
    response = await client.post(f"/credentials/{service['slug']}/verify", headers=user.headers)
    assert response.status_code == 403
