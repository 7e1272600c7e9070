"""Reference panels: CRUD, filters, ownership by a service, bad input."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from service_registry.models import ReferencePanel


def panel_body(service_id, **overrides):
    return {
        "service_id": service_id,
        "slug": "h3africa-v6",
        "remote_id": "apps@h3africa-v6hc-s@1.0.0",
        "display_name": "H3Africa v6 (hg38)",
        "populations": ["afr", "mixed"],
        "build": "hg38",
        "samples_count": 4447,
    } | overrides


async def test_create_get_patch_delete(client, admin, researcher, new_service):
    service = await new_service()
    created = await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    assert created.status_code == 201
    panel = created.json()
    assert panel["variants_count"] is None  # unknown stays unknown
    fetched = await client.get(f"/reference-panels/{panel['id']}", headers=researcher)
    assert fetched.json() == panel
    patched = await client.patch(
        f"/reference-panels/{panel['id']}", json={"is_available": False}, headers=admin
    )
    assert patched.json()["is_available"] is False
    assert (
        await client.delete(f"/reference-panels/{panel['id']}", headers=admin)
    ).status_code == 204
    assert (
        await client.get(f"/reference-panels/{panel['id']}", headers=researcher)
    ).status_code == 404


async def test_panel_for_missing_service_is_404(client, admin, db):
    response = await client.post(
        "/reference-panels", json=panel_body(str(uuid.uuid4())), headers=admin
    )
    assert response.status_code == 404
    assert "must belong" in response.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(ReferencePanel)) == 0


async def test_duplicate_panel_slug_in_one_service_is_409(client, admin, new_service, db):
    service = await new_service()
    await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    again = await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    assert again.status_code == 409
    assert "already has a panel" in again.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(ReferencePanel)) == 1


async def test_panel_for_a_deleted_service_is_404(client, admin, new_service, db):
    service = await new_service()
    assert (await client.delete(f"/services/{service['id']}", headers=admin)).status_code == 204
    response = await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    assert response.status_code == 404
    assert await db.scalar(select(func.count()).select_from(ReferencePanel)) == 0


async def test_panel_writes_need_writer_role(client, researcher, new_service):
    service = await new_service()
    assert (
        await client.post("/reference-panels", json=panel_body(service["id"]), headers=researcher)
    ).status_code == 403


async def test_invalid_panel_bodies(client, admin, new_service):
    service = await new_service()
    for overrides in (
        {"build": "hg17"},
        {"samples_count": -1},
        {"populations": ["a b"]},
        {"slug": "Bad Slug"},
    ):
        response = await client.post(
            "/reference-panels", json=panel_body(service["id"], **overrides), headers=admin
        )
        assert response.status_code == 422, overrides


async def test_filters(client, admin, researcher, new_service):
    a = await new_service()
    b = await new_service(
        slug="michigan", name="Michigan", base_url="https://imputationserver.sph.umich.edu"
    )
    await client.post("/reference-panels", json=panel_body(a["id"]), headers=admin)
    await client.post(
        "/reference-panels",
        json=panel_body(
            b["id"],
            slug="1kg",
            remote_id="apps@1000g-phase-3-v5",
            display_name="1000G Phase 3",
            populations=["EUR", "AFR"],
            build="hg19",
        ),
        headers=admin,
    )
    await client.post(
        "/reference-panels",
        json=panel_body(
            b["id"],
            slug="hrc",
            remote_id="apps@hrc-r1.1",
            display_name="HRC r1.1",
            populations=["eur"],
            build="hg19",
            is_available=False,
        ),
        headers=admin,
    )

    async def slugs(**params):
        response = await client.get("/reference-panels", params=params, headers=researcher)
        assert response.status_code == 200, response.text
        return sorted(p["slug"] for p in response.json()["items"])

    assert await slugs() == ["1kg", "h3africa-v6", "hrc"]
    assert await slugs(service_id=b["id"]) == ["1kg", "hrc"]
    assert await slugs(build="hg38") == ["h3africa-v6"]
    assert await slugs(population="afr") == ["1kg", "h3africa-v6"]  # case-insensitive
    assert await slugs(is_available=False) == ["hrc"]


async def test_panels_of_deleted_service_are_hidden(client, admin, researcher, new_service):
    service = await new_service()
    panel = (
        await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    ).json()
    await client.delete(f"/services/{service['id']}", headers=admin)
    assert (
        await client.get(f"/reference-panels/{panel['id']}", headers=researcher)
    ).status_code == 404
    assert (await client.get("/reference-panels", headers=researcher)).json()["items"] == []


# ---------------------------------------------------------------- found by fuzzing (issue 10)


@pytest.mark.parametrize("field", ["access", "display_name", "is_available", "chromosomes"])
async def test_patch_with_null_for_a_required_field_is_422(client, admin, new_service, field):
    service = await new_service()
    panel = (
        await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    ).json()
    response = await client.patch(
        f"/reference-panels/{panel['id']}", json={field: None}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert (await client.get(f"/reference-panels/{panel['id']}", headers=admin)).json() == panel


async def test_patch_with_null_clears_an_unknown_count(client, admin, new_service):
    service = await new_service()
    panel = (
        await client.post("/reference-panels", json=panel_body(service["id"]), headers=admin)
    ).json()
    response = await client.patch(
        f"/reference-panels/{panel['id']}", json={"samples_count": None}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["samples_count"] is None


async def test_samples_count_beyond_the_integer_column_is_422(client, admin, new_service, db):
    service = await new_service()
    body = panel_body(service["id"], samples_count=2**31)
    assert (await client.post("/reference-panels", json=body, headers=admin)).status_code == 422
    assert await db.scalar(select(func.count()).select_from(ReferencePanel)) == 0
    ok = panel_body(service["id"], samples_count=2**31 - 1)
    panel = (await client.post("/reference-panels", json=ok, headers=admin)).json()
    too_big = {"samples_count": 357613821934446772224}
    patched = await client.patch(f"/reference-panels/{panel['id']}", json=too_big, headers=admin)
    assert patched.status_code == 422


async def test_unpaired_surrogate_in_remote_id_is_422_and_nothing_is_stored(
    client, admin, new_service, db
):
    service = await new_service()
    body = json.dumps(panel_body(service["id"], remote_id="apps@h3@1SURROGATE"))
    body = body.replace("SURROGATE", "\\udc6c")  # a low surrogate with no high one before it
    response = await client.post(
        "/reference-panels", content=body, headers=admin | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
    assert await db.scalar(select(func.count()).select_from(ReferencePanel)) == 0
