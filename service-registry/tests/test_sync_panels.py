"""sync-panels against a real HTTP server playing Cloudgene and WES nodes."""

import json
import logging

import pytest

from .conftest import service_body
from .remotes import STARTER_KIT_SERVICE_INFO, WES_SERVICE_INFO, json_body, respond

APP_PATH = "/api/v2/server/apps/imputationserver2"
TOKEN = "cg-admin-token-do-not-leak"
WES_FIELDS = {
    "kind": "ga4gh_wes",
    "cloudgene_app_id": None,
    "requires_credentials": False,
    "credential_type": "none",
}


def cloudgene_app(panels, app_id="imputationserver2@2.0.12"):
    """The shape of Cloudgene 3's WdlAppResponse (params with app_list / binded_list inputs)."""
    return {
        "id": app_id,
        "name": "Genotype Imputation (Minimac4)",
        "version": "2.0.12",
        "params": [
            {"id": "files", "type": "local_folder", "visible": True, "required": True},
            {
                "id": "refpanel",
                "description": "Reference Panel",
                "type": "app_list",
                "visible": True,
                "required": True,
                "values": [
                    {"key": key, "value": name, "label": None, "values": None, "enabled": False}
                    for key, name, _ in panels
                ],
            },
            {
                "id": "build",
                "type": "list",
                "visible": True,
                "values": [
                    {"key": "hg19", "value": "GRCh37/hg19"},
                    {"key": "hg38", "value": "GRCh38/hg38"},
                ],
            },
            {
                "id": "population",
                "type": "binded_list",
                "bind": "refpanel",
                "visible": True,
                "values": [
                    {
                        "key": key,
                        "label": name,
                        "value": None,
                        "enabled": False,
                        "values": [{"key": p, "value": p.upper()} for p in pops],
                    }
                    for key, name, pops in panels
                ],
            },
        ],
    }


def wes_info(panels=None, **changes):
    info = json.loads(json.dumps(WES_SERVICE_INFO))
    if panels is not None:
        info["tags"] = {"fedimpute.reference_panels": json.dumps(panels)}
    return info | changes


PANEL = {
    "id": "sim-ooa-chr20",
    "name": "Simulated out-of-Africa, chr20 (CI size)",
    "version": "1.0.0",
    "build": "hg38",
    "populations": ["afr", "eur", "eas", "all"],
    "samples": 300,
    "chromosomes": ["20"],
    "location": "file:///srv/node/panels/sim-ooa-chr20",
}


async def create(api, admin, **overrides):
    response = await api.post("/services", json=service_body(**overrides), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def sync(api, admin, service, **body):
    return await api.post(
        f"/services/{service['id']}/sync-panels", json=body or None, headers=admin
    )


async def panels_of(api, headers, service_id):
    items = (
        await api.get("/reference-panels", params={"service_id": service_id}, headers=headers)
    ).json()["items"]
    return {p["slug"]: p for p in items}


async def test_cloudgene_panels_are_created_then_updated_then_withdrawn(api, admin, remote):
    service = await create(api, admin, base_url=remote.url, limits={"supported_builds": []})
    remote.routes[APP_PATH] = json_body(
        cloudgene_app(
            [
                ("apps@h3africa-v6hc-s@1.0.0", "H3Africa v6 High Coverage", ["afr", "mixed"]),
                ("apps@1000g-phase-3-v5", "1000 Genomes Phase 3 (Version 5)", ["eur", "afr"]),
            ]
        )
    )
    first = await sync(api, admin, service)
    assert first.status_code == 200, first.text
    report = first.json()
    assert sorted(report["created"]) == ["1000g-phase-3-v5", "h3africa-v6hc-s"]
    assert report["supported_builds"] == ["hg19", "hg38"]
    assert (report["cloudgene_app_id"], report["cloudgene_app_version"]) == (
        "imputationserver2",
        "2.0.12",
    )
    panels = await panels_of(api, admin, service["id"])
    h3 = panels["h3africa-v6hc-s"]
    assert (h3["remote_id"], h3["version"]) == ("apps@h3africa-v6hc-s@1.0.0", "1.0.0")
    assert h3["populations"] == ["afr", "mixed"]
    # not stated by the remote: not invented
    assert h3["samples_count"] is None
    assert h3["build"] is None

    remote.routes[APP_PATH] = json_body(
        cloudgene_app([("apps@h3africa-v6hc-s@1.0.0", "H3Africa v6 HC", ["afr"])])
    )
    second = (await sync(api, admin, service)).json()
    assert second["updated"] == ["h3africa-v6hc-s"]
    assert second["withdrawn"] == ["1000g-phase-3-v5"]
    third = (await sync(api, admin, service)).json()
    assert third["unchanged"] == ["h3africa-v6hc-s"]
    assert third["created"] == third["updated"] == third["withdrawn"] == []
    panels = await panels_of(api, admin, service["id"])
    assert panels["1000g-phase-3-v5"]["is_available"] is False


async def test_a_new_panel_version_updates_the_same_row(api, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@hrc-r1.1@1.0.0", "HRC", ["eur"])]))
    await sync(api, admin, service)
    before = (await panels_of(api, admin, service["id"]))["hrc-r1.1"]
    remote.routes[APP_PATH] = json_body(
        cloudgene_app(
            [("apps@hrc-r1.1@1.0.0", "HRC", ["eur"]), ("apps@hrc-r1.1@2.0.0", "HRC", ["eur"])]
        )
    )
    report = (await sync(api, admin, service)).json()
    assert (report["updated"], report["created"], report["withdrawn"]) == (["hrc-r1.1"], [], [])
    panels = await panels_of(api, admin, service["id"])
    assert list(panels) == ["hrc-r1.1"]
    after = panels["hrc-r1.1"]
    assert (after["id"], after["version"], after["remote_id"]) == (
        before["id"],
        "2.0.0",
        "apps@hrc-r1.1@2.0.0",
    )
    assert after["is_available"] is True


async def test_hand_made_panels_are_left_alone(api, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    manual = {
        "service_id": service["id"],
        "slug": "private-panel",
        "remote_id": "apps@private",
        "display_name": "Private",
    }
    assert (await api.post("/reference-panels", json=manual, headers=admin)).status_code == 201
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@topmed-r3", "TOPMed r3", ["all"])]))
    report = (await sync(api, admin, service)).json()
    assert report["withdrawn"] == []
    assert (await panels_of(api, admin, service["id"]))["private-panel"]["is_available"] is True


async def test_app_id_is_discovered_bare_with_the_version_as_data(api, admin, remote):
    service = await create(api, admin, base_url=remote.url, cloudgene_app_id=None)
    remote.routes["/api/v2/server"] = json_body(
        {
            "name": "MIS",
            "apps": [
                {"id": "imputationserver2-pgs@1.0.0"},
                {"id": "imputationserver2@2.0.11"},
                {"id": "imputationserver2@2.0.12"},
            ],
        }
    )
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@topmed-r3", "TOPMed r3", ["all"])]))
    report = (await sync(api, admin, service, cloudgene_token=TOKEN)).json()
    assert (report["cloudgene_app_id"], report["cloudgene_app_version"]) == (
        "imputationserver2",
        "2.0.12",
    )
    stored = (await api.get(f"/services/{service['id']}", headers=admin)).json()
    assert (stored["cloudgene_app_id"], stored["cloudgene_app_version"]) == (
        "imputationserver2",
        "2.0.12",
    )


@pytest.mark.parametrize(
    ("server", "form", "reason"),
    [
        ({"name": "MIS", "apps": [], "loggedIn": False}, None, "lists no apps"),
        (None, respond(401, b""), "HTTP 401"),
        (
            None,
            json_body(
                {
                    "message": "Application imputationserver2 not found or the request "
                    "requires user authentication.",
                    "success": False,
                },
                status=404,
            ),
            "HTTP 404",
        ),
    ],
    ids=["no-apps-listed", "form-401", "form-404"],
)
async def test_without_a_token_sync_is_a_clear_400_and_stores_nothing(
    api, admin, remote, server, form, reason
):
    app_id = None if server else "imputationserver2"
    service = await create(api, admin, base_url=remote.url, cloudgene_app_id=app_id)
    if server:
        remote.routes["/api/v2/server"] = json_body(server)
    if form:
        remote.routes[APP_PATH] = form
    response = await sync(api, admin, service)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert "cloudgene_token" in response.json()["detail"]
    assert await panels_of(api, admin, service["id"]) == {}


async def test_the_token_is_sent_as_x_auth_token_and_never_shown(api, admin, remote, caplog):
    caplog.set_level(logging.DEBUG)
    service = await create(api, admin, base_url=remote.url)
    remote.routes[APP_PATH] = respond(401, b"")
    refused = await sync(api, admin, service, cloudgene_token=TOKEN)
    assert refused.status_code == 400
    assert "refused the Cloudgene token" in refused.json()["detail"]
    assert TOKEN not in refused.text
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@topmed-r3", "TOPMed r3", ["all"])]))
    accepted = await sync(api, admin, service, cloudgene_token=TOKEN)
    assert accepted.status_code == 200
    assert TOKEN not in accepted.text
    assert all(f"X-Auth-Token: {TOKEN}" in head for head in remote.heads)
    assert TOKEN not in caplog.text
    shown = (await api.get(f"/services/{service['id']}", headers=admin)).text
    assert TOKEN not in shown


async def test_sync_body_is_checked(api, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    response = await sync(api, admin, service, token=TOKEN)
    assert response.status_code == 422
    assert await panels_of(api, admin, service["id"]) == {}


@pytest.mark.parametrize(
    ("info", "types", "engines"),
    [
        (WES_SERVICE_INFO, {"CWL": ["v1.0"], "WDL": ["1.0"]}, {"cromwell": ["85"]}),
        (
            STARTER_KIT_SERVICE_INFO,
            {"NEXTFLOW": ["21.04.0"], "WDL": ["1.0"]},
            {"NATIVE": ["1.0.0"]},
        ),
    ],
    ids=["spec", "starter-kit"],
)
async def test_wes_sync_records_capabilities_not_panels(api, admin, remote, info, types, engines):
    service = await create(api, admin, slug="wes", base_url=remote.url, **WES_FIELDS)
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(info)
    report = (await sync(api, admin, service)).json()
    assert report["created"] == []
    caps = report["capabilities"]
    assert (caps["workflow_type_versions"], caps["workflow_engine_versions"]) == (types, engines)
    assert caps["api_url"] == f"{remote.url}/ga4gh/wes/v1"
    stored = (await api.get(f"/services/{service['id']}", headers=admin)).json()
    assert stored["capabilities"] == caps
    assert stored["api_url"] == f"{remote.url}/ga4gh/wes/v1"
    assert await panels_of(api, admin, service["id"]) == {}


async def test_wes_capabilities_are_normalised(api, admin, remote):
    service = await create(api, admin, slug="wes", base_url=remote.url, **WES_FIELDS)
    info = wes_info(
        workflow_engine_versions={
            "cromwell": "47",
            "cwltool": {"workflow_engine_version": ["3.1"]},
        },
        default_workflow_engine_parameters={
            "snakemake": [{"name": "--cores", "type": "int", "default_value": "1"}]
        },
        auth_instruction_url="https://auth.example",
        supported_wes_versions=["1.0.0", 7, {"x": 1}],
        system_state_counts={"RUNNING": 2, "COMPLETE": "many"},
    )
    info.pop("auth_instructions_url")
    remote.routes["/service-info"] = json_body(info)
    caps = (await sync(api, admin, service)).json()["capabilities"]
    assert caps["api_url"] == remote.url
    assert caps["workflow_engine_versions"] == {"cromwell": ["47"], "cwltool": ["3.1"]}
    assert caps["default_workflow_engine_parameters"] == [
        {"name": "--cores", "type": "int", "default_value": "1", "workflow_engine": "snakemake"}
    ]
    assert caps["auth_instructions_url"] == "https://auth.example"
    assert caps["supported_wes_versions"] == ["1.0.0", "7"]
    assert caps["system_state_counts"] == {"RUNNING": 2}


async def test_panels_published_in_wes_tags_become_real_panels(api, admin, remote):
    service = await create(api, admin, slug="node", base_url=remote.url, **WES_FIELDS)
    broken = {"id": "../etc", "name": "x"}
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(wes_info([PANEL, broken]))
    report = (await sync(api, admin, service)).json()
    assert report["created"] == ["sim-ooa-chr20"]
    assert len(report["skipped"]) == 1
    assert report["skipped"][0].startswith("panel #1: id:")
    assert report["supported_builds"] == ["hg38"]
    panel = (await panels_of(api, admin, service["id"]))["sim-ooa-chr20"]
    assert {k: panel[k] for k in ("remote_id", "version", "build", "samples_count")} == {
        "remote_id": "sim-ooa-chr20",
        "version": "1.0.0",
        "build": "hg38",
        "samples_count": 300,
    }
    assert panel["location"] == PANEL["location"]
    assert panel["chromosomes"] == ["20"]
    assert panel["populations"] == ["afr", "eur", "eas", "all"]

    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(
        wes_info([PANEL | {"version": "1.1.0"}])
    )
    assert (await sync(api, admin, service)).json()["updated"] == ["sim-ooa-chr20"]
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(wes_info())
    assert (await sync(api, admin, service)).json()["withdrawn"] == ["sim-ooa-chr20"]


@pytest.mark.parametrize(
    "tag",
    ["not json", json.dumps({"id": "x"}), "[" * 100000 + "]" * 100000],
    ids=["not-json", "not-a-list", "deeply-nested"],
)
async def test_a_broken_panels_tag_is_reported_not_fatal(api, admin, remote, tag):
    service = await create(api, admin, slug="node", base_url=remote.url, **WES_FIELDS)
    info = wes_info() | {"tags": {"fedimpute.reference_panels": tag}}
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(info)
    response = await sync(api, admin, service)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == []
    assert response.json()["skipped"]
    assert response.json()["capabilities"]["workflow_type_versions"]


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        (respond(500, b"oops", "text/plain"), 502),
        (respond(200, b"<html/>", "text/html"), 502),
        (json_body({"params": []}), 502),
    ],
)
async def test_remote_failures_are_502_and_change_nothing(api, admin, remote, behaviour, status):
    service = await create(api, admin, base_url=remote.url)
    remote.routes[APP_PATH] = behaviour
    response = await sync(api, admin, service)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert await panels_of(api, admin, service["id"]) == {}


async def test_sync_is_for_writers(api, researcher, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    assert (
        await api.post(f"/services/{service['id']}/sync-panels", headers=researcher)
    ).status_code == 403


async def test_nul_characters_from_the_remote_are_a_502_not_a_500(api, admin, remote):
    service = await create(api, admin, slug="node", base_url=remote.url, **WES_FIELDS)
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(wes_info(name="bad\u0000name"))
    response = await sync(api, admin, service)
    assert response.status_code == 502
    assert "NUL" in response.json()["detail"]
    cloudgene = await create(api, admin, slug="cg", base_url=remote.url)
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@x\u0000y@1", "X", ["afr"])]))
    assert (await sync(api, admin, cloudgene)).status_code == 502
    assert await panels_of(api, admin, cloudgene["id"]) == {}


async def test_a_token_with_a_nul_is_refused(api, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    response = await sync(api, admin, service, cloudgene_token="tok\u0000en")
    assert response.status_code == 422
    assert remote.heads == []
