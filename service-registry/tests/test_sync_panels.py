"""sync-panels against a real HTTP server playing Cloudgene and WES nodes."""

import pytest

from fedimpute_shared.testing.client import app_client

from .conftest import service_body
from .remotes import STARTER_KIT_SERVICE_INFO, WES_SERVICE_INFO, json_body, respond

APP_PATH = "/api/v2/server/apps/imputationserver2"


def cloudgene_app(panels):
    """The shape of Cloudgene 3's WdlAppResponse (params with app_list / binded_list inputs)."""
    return {
        "id": "imputationserver2",
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


@pytest.fixture
async def api(make_app, db):
    async with app_client(make_app(allow_private_urls=True)) as c:
        yield c


async def create(api, admin, **overrides):
    response = await api.post("/services", json=service_body(**overrides), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


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
                (
                    "apps@1000g-phase-3-v5",
                    "1000 Genomes Phase 3 (Version 5)",
                    ["eur", "afr", "mixed"],
                ),
            ]
        )
    )
    first = await api.post(f"/services/{service['id']}/sync-panels", headers=admin)
    assert first.status_code == 200, first.text
    report = first.json()
    assert sorted(report["created"]) == ["1000g-phase-3-v5", "h3africa-v6hc-s-1.0.0"]
    assert report["supported_builds"] == ["hg19", "hg38"]
    panels = await panels_of(api, admin, service["id"])
    h3 = panels["h3africa-v6hc-s-1.0.0"]
    assert h3["remote_id"] == "apps@h3africa-v6hc-s@1.0.0"
    assert h3["populations"] == ["afr", "mixed"]
    # not stated by the remote: not invented
    assert h3["samples_count"] is None
    assert h3["build"] is None

    remote.routes[APP_PATH] = json_body(
        cloudgene_app([("apps@h3africa-v6hc-s@1.0.0", "H3Africa v6 HC", ["afr"])])
    )
    second = (await api.post(f"/services/{service['id']}/sync-panels", headers=admin)).json()
    assert second["updated"] == ["h3africa-v6hc-s-1.0.0"]
    assert second["withdrawn"] == ["1000g-phase-3-v5"]
    third = (await api.post(f"/services/{service['id']}/sync-panels", headers=admin)).json()
    assert third["unchanged"] == ["h3africa-v6hc-s-1.0.0"]
    assert third["created"] == third["updated"] == third["withdrawn"] == []
    panels = await panels_of(api, admin, service["id"])
    assert panels["1000g-phase-3-v5"]["is_available"] is False


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
    report = (await api.post(f"/services/{service['id']}/sync-panels", headers=admin)).json()
    assert report["withdrawn"] == []
    assert (await panels_of(api, admin, service["id"]))["private-panel"]["is_available"] is True


async def test_app_id_is_discovered_when_missing(api, admin, remote):
    service = await create(api, admin, base_url=remote.url, cloudgene_app_id=None)
    remote.routes["/api/v2/server"] = json_body(
        {"name": "MIS", "apps": [{"id": "imputationserver2-pgs"}, {"id": "imputationserver2"}]}
    )
    remote.routes[APP_PATH] = json_body(cloudgene_app([("apps@topmed-r3", "TOPMed r3", ["all"])]))
    report = (await api.post(f"/services/{service['id']}/sync-panels", headers=admin)).json()
    assert report["cloudgene_app_id"] == "imputationserver2"


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (WES_SERVICE_INFO, ["cwl-v1.0", "wdl-1.0"]),
        (STARTER_KIT_SERVICE_INFO, ["nextflow-21.04.0", "wdl-1.0"]),
    ],
    ids=["spec", "starter-kit"],
)
async def test_wes_workflow_types(api, admin, remote, info, expected):
    service = await create(
        api,
        admin,
        slug="wes",
        kind="ga4gh_wes",
        base_url=remote.url,
        cloudgene_app_id=None,
        requires_credentials=False,
        credential_type="none",
    )
    remote.routes["/ga4gh/wes/v1/service-info"] = json_body(info)
    report = (await api.post(f"/services/{service['id']}/sync-panels", headers=admin)).json()
    assert sorted(report["created"]) == expected


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
    response = await api.post(f"/services/{service['id']}/sync-panels", headers=admin)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert await panels_of(api, admin, service["id"]) == {}


async def test_sync_is_for_writers(api, researcher, admin, remote):
    service = await create(api, admin, base_url=remote.url)
    assert (
        await api.post(f"/services/{service['id']}/sync-panels", headers=researcher)
    ).status_code == 403
