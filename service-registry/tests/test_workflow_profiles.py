"""Workflow profiles: templates, validation against the node's capabilities, and the internal
service view job-processor reads them from."""

import json

import pytest

from .conftest import bearer, service_body
from .remotes import STARTER_KIT_SERVICE_INFO, WES_SERVICE_INFO, json_body

WES_FIELDS = {
    "kind": "ga4gh_wes",
    "cloudgene_app_id": None,
    "requires_credentials": False,
    "credential_type": "none",
}
SAPPORO_LIKE = WES_SERVICE_INFO | {
    "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.0", "v1.1", "v1.2"]}},
    "workflow_engine_versions": {"cwltool": {"workflow_engine_version": ["3.3.20260925135507"]}},
    "supported_wes_versions": ["1.1.0"],
    "tags": {
        "fedimpute.reference_panels": json.dumps(
            [
                {
                    "id": "sim-ooa-chr20",
                    "name": "Simulated OOA chr20",
                    "version": "1.0.0",
                    "build": "hg38",
                    "populations": ["afr", "all"],
                    "samples": 300,
                    "chromosomes": ["20"],
                    "location": "file:///srv/panels/sim-ooa-chr20",
                }
            ]
        )
    },
}
NODE_WORKFLOW = "https://node.example/workflows/imputation.cwl"


async def synced_node(api, admin, remote, info=SAPPORO_LIKE, slug="node"):
    remote.routes["/service-info"] = json_body(info)
    body = service_body(slug=slug, base_url=remote.url, **WES_FIELDS)
    service = (await api.post("/services", json=body, headers=admin)).json()
    assert (await api.post(f"/services/{slug}/sync-panels", headers=admin)).status_code == 200
    return service


async def test_templates_are_listed(api, researcher):
    templates = {
        t["id"]: t
        for t in (await api.get("/workflow-profiles/templates", headers=researcher)).json()
    }
    assert set(templates) == {
        "fedimpute-imputation-cwl",
        "starter-kit-flagstat",
        "sandbox-imputation",
    }
    ours = templates["fedimpute-imputation-cwl"]
    assert ours["needs"] == ["workflow_url"]
    assert ours["profile"]["params"]["target_vcfs"] == {
        "from": "input_files",
        "as": "cwl_file_array",
    }


async def test_project_workflow_profile_from_its_template(api, admin, remote):
    await synced_node(api, admin, remote)
    response = await api.put(
        "/services/node/workflow-profile",
        json={"template": "fedimpute-imputation-cwl", "workflow_url": NODE_WORKFLOW},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["workflow_url"] == NODE_WORKFLOW
    assert (
        profile["workflow_type"],
        profile["workflow_type_version"],
        profile["workflow_engine"],
    ) == (
        "CWL",
        "v1.2",
        "cwltool",
    )
    assert profile["params"]["panel"] == {
        "from": "panel_location",
        "as": "cwl_directory",
        "values": None,
    }
    assert profile["params"]["threads"] == {"value": 1}
    shown = (await api.get("/services/node", headers=admin)).json()
    assert shown["workflow_profile"] == profile
    listed = (await api.get("/services", headers=admin)).json()["items"]
    assert [s["workflow_profile"] for s in listed if s["slug"] == "node"] == [profile]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"workflow_type": "WDL", "workflow_type_version": "1.0"}, "workflow_type"),
        ({"workflow_type_version": "v9"}, "workflow_type_version"),
        ({"workflow_engine": "toil"}, "workflow_engine"),
        ({"workflow_engine_version": "1.0"}, "workflow_engine_version"),
    ],
)
async def test_profile_must_fit_the_node(api, admin, remote, change, field):
    await synced_node(api, admin, remote)
    body = {"template": "fedimpute-imputation-cwl", "workflow_url": NODE_WORKFLOW} | change
    response = await api.put("/services/node/workflow-profile", json=body, headers=admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [f"body.{field}"]
    assert (await api.get("/services/node", headers=admin)).json()["workflow_profile"] is None


async def test_engine_is_refused_on_a_wes_1_0_node(api, admin, remote):
    await synced_node(
        api, admin, remote, info=STARTER_KIT_SERVICE_INFO | {"supported_wes_versions": ["1.0.0"]}
    )
    body = {"template": "starter-kit-flagstat", "workflow_engine": "NATIVE"}
    response = await api.put("/services/node/workflow-profile", json=body, headers=admin)
    assert response.status_code == 422
    assert "WES 1.1" in response.json()["errors"][0]["message"]
    ok = await api.put(
        "/services/node/workflow-profile", json={"template": "starter-kit-flagstat"}, headers=admin
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"template": "fedimpute-imputation-cwl"}, 422),  # needs workflow_url
        ({"template": "nope"}, 404),
        ({"template": "starter-kit-flagstat", "params": {"input": {"from": "build"}}}, 422),
        ({"template": "starter-kit-flagstat", "params": {"input": {"from": "input_files"}}}, 422),
        ({"template": "starter-kit-flagstat", "surprise": 1}, 422),
        ({"template": "starter-kit-flagstat", "tags": {"job": "a\u0000b"}}, 422),
        (
            {
                "template": "starter-kit-flagstat",
                "params": {
                    "input": {"from": "input_files", "as": "url_string"},
                    "x": {"value": 1, "from": "build"},
                },
            },
            422,
        ),
    ],
    ids=[
        "incomplete",
        "unknown-template",
        "no-input-files",
        "bad-encoding",
        "unknown-field",
        "nul",
        "mixed-param",
    ],
)
async def test_bad_profiles_are_refused(api, admin, remote, body, status):
    await synced_node(api, admin, remote, info=STARTER_KIT_SERVICE_INFO)
    response = await api.put("/services/node/workflow-profile", json=body, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.get("/services/node", headers=admin)).json()["workflow_profile"] is None


async def test_profile_needs_a_synced_wes_service(api, admin, researcher):
    body = {"template": "starter-kit-flagstat"}
    cloudgene = (await api.post("/services", json=service_body(), headers=admin)).json()
    assert (
        await api.put(f"/services/{cloudgene['id']}/workflow-profile", json=body, headers=admin)
    ).status_code == 422
    wes = service_body(slug="unsynced", base_url="https://wes.example.org", **WES_FIELDS)
    assert (await api.post("/services", json=wes, headers=admin)).status_code == 201
    response = await api.put("/services/unsynced/workflow-profile", json=body, headers=admin)
    assert response.status_code == 409
    assert "sync" in response.json()["detail"]
    assert (
        await api.put("/services/unsynced/workflow-profile", json=body, headers=researcher)
    ).status_code == 403


async def test_profile_can_be_removed(api, admin, remote):
    await synced_node(api, admin, remote)
    await api.put(
        "/services/node/workflow-profile",
        json={"template": "fedimpute-imputation-cwl", "workflow_url": NODE_WORKFLOW},
        headers=admin,
    )
    assert (await api.delete("/services/node/workflow-profile", headers=admin)).status_code == 204
    assert (await api.get("/services/node", headers=admin)).json()["workflow_profile"] is None


async def test_internal_view_has_what_job_processor_needs(api, admin, remote, token_issuer):
    service = await synced_node(api, admin, remote)
    await api.put(
        "/services/node/workflow-profile",
        json={"template": "fedimpute-imputation-cwl", "workflow_url": NODE_WORKFLOW},
        headers=admin,
    )
    jp = bearer(token_issuer.service_token("job-processor", "service-registry"))
    response = await api.get(f"/internal/services/{service['id']}", headers=jp)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["api_url"] == remote.url
    assert body["capabilities"]["workflow_engine_versions"] == {"cwltool": ["3.3.20260925135507"]}
    assert body["workflow_profile"]["workflow_url"] == NODE_WORKFLOW
    [panel] = body["panels"]
    assert (panel["remote_id"], panel["location"], panel["build"]) == (
        "sim-ooa-chr20",
        "file:///srv/panels/sim-ooa-chr20",
        "hg38",
    )
    other = bearer(token_issuer.service_token("notification", "service-registry"))
    assert (await api.get(f"/internal/services/{service['id']}", headers=other)).status_code == 403
    assert (await api.get(f"/internal/services/{service['id']}", headers=admin)).status_code == 401
    missing = await api.get("/internal/services/nope", headers=jp)
    assert missing.status_code == 404


async def test_discovery_matches_wes_nodes_on_their_published_panels(
    api, admin, remote, researcher
):
    await synced_node(api, admin, remote)
    body = (
        await api.get(
            "/services/discover",
            params={"panel": "sim-ooa-chr20", "build": "hg38", "population": "afr"},
            headers=researcher,
        )
    ).json()
    [ranked] = body["results"]
    assert ranked["service"]["slug"] == "node"
    assert ranked["parts"]["panel"]["reason"] == "sim-ooa-chr20 is in hg38"
