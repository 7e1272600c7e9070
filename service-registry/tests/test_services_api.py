"""The services API: create, read, list with filters, change, delete, and every bad input."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from service_registry.models import ImputationService

from .conftest import bearer, service_body


async def test_create_returns_the_service_with_unknown_health(client, admin):
    response = await client.post("/services", json=service_body(), headers=admin)
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "afrigen-d"
    assert body["location"]["country"] == "ZA"
    assert body["health"]["status"] == "unknown"
    assert body["health"]["at_risk"] is False
    assert uuid.UUID(body["id"])


async def test_get_by_id_and_by_slug(client, researcher, new_service):
    created = await new_service()
    by_id = await client.get(f"/services/{created['id']}", headers=researcher)
    by_slug = await client.get("/services/afrigen-d", headers=researcher)
    assert by_id.json() == by_slug.json() == created


async def test_service_admin_may_write(client, service_admin):
    response = await client.post(
        "/services", json=service_body(slug="sa-made"), headers=service_admin
    )
    assert response.status_code == 201


async def test_duplicate_slug_is_409(client, admin, new_service, db):
    await new_service()
    response = await client.post("/services", json=service_body(name="Other"), headers=admin)
    assert response.status_code == 409
    assert response.json()["slug"] == "afrigen-d"
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 1


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://impute.example.org", "http:// or https://"),
        ("https://admin:pw@impute.example.org", "credentials"),
        ("http://127.0.0.1:8101", "loopback"),
        ("http://10.0.0.5", "private"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://localhost:8101", "local host name"),
    ],
)
async def test_unsafe_url_is_422_saying_why(client, admin, db, url, why):
    response = await client.post("/services", json=service_body(base_url=url), headers=admin)
    assert response.status_code == 422
    body = response.json()
    assert why in body["detail"]
    assert body["errors"][0]["field"] == "body.base_url"
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


DNASTACK = {
    "slug": "dnastack",
    "kind": "dnastack",
    "base_url": "https://workbench.example.org",
    "cloudgene_app_id": None,
    "requires_credentials": True,
    "credential_type": "oauth_client_credentials",
}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/token", "metadata"),
        ("http://127.0.0.1:9000/token", "loopback"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:secret@auth.example.org/token", "credentials"),
    ],
)
async def test_dnastack_token_endpoint_gets_the_url_checks(
    client, admin, db, new_service, url, why
):
    options = {"mode": "workbench", "namespace": "ns1", "token_endpoint": url}
    response = await client.post(
        "/services", json=service_body(**DNASTACK, protocol_options=options), headers=admin
    )
    assert response.status_code == 422
    assert why in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "body.protocol_options.token_endpoint"
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0
    good = {
        "mode": "workbench",
        "namespace": "ns1",
        "token_endpoint": "https://auth.example.org/token",
    }
    created = await new_service(**DNASTACK, protocol_options=good)
    patched = await client.patch(
        f"/services/{created['id']}", json={"protocol_options": options}, headers=admin
    )
    assert patched.status_code == 422
    stored = (await client.get(f"/services/{created['id']}", headers=admin)).json()
    assert stored["protocol_options"]["token_endpoint"] == "https://auth.example.org/token"


async def test_private_url_allowed_when_configured(make_app, admin):
    from fedimpute_shared.testing.client import app_client

    async with app_client(make_app(allow_private_urls=True)) as c:
        response = await c.post(
            "/services", json=service_body(base_url="http://127.0.0.1:8101"), headers=admin
        )
    assert response.status_code == 201


async def test_unknown_kind_is_422(client, admin):
    response = await client.post("/services", json=service_body(kind="galaxy"), headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.kind"


@pytest.mark.parametrize(
    ("overrides", "field_or_text"),
    [
        ({"slug": "Bad Slug!"}, "body.slug"),
        ({"name": ""}, "body.name"),
        ({"limits": {"min_samples": 100, "max_samples": 10}}, "min_samples must not exceed"),
        ({"limits": {"supported_builds": ["hg17"]}}, "body.limits.supported_builds.0"),
        ({"location": {"latitude": 95, "longitude": 0}}, "body.location.latitude"),
        ({"location": {"latitude": 10}}, "both latitude and longitude"),
        ({"kind": "ga4gh_wes"}, "cloudgene_app_id applies only"),
        ({"requires_credentials": True, "credential_type": "none"}, "credential_type other than"),
        ({"unexpected": 1}, "body.unexpected"),
    ],
)
async def test_invalid_bodies_are_422_with_field_paths(client, admin, overrides, field_or_text):
    response = await client.post("/services", json=service_body(**overrides), headers=admin)
    assert response.status_code == 422
    assert field_or_text in response.text


async def test_malformed_json_is_422(client, admin):
    response = await client.post(
        "/services", content=b'{"name": ', headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("malformed-json")


async def test_non_admin_write_is_403_and_stores_nothing(client, researcher, db):
    response = await client.post("/services", json=service_body(), headers=researcher)
    assert response.status_code == 403
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


async def test_admin_token_without_write_scope_is_403(client, token_issuer):
    token = token_issuer.access_token(roles=["admin"], scopes=["services:read"])
    response = await client.post("/services", json=service_body(), headers=bearer(token))
    assert response.status_code == 403
    assert "services:write" in response.json()["detail"]


@pytest.mark.parametrize("kind", ["none", "expired", "forged"])
async def test_bad_tokens_are_401(client, token_issuer, kind):
    headers = {
        "none": {},
        "expired": bearer(token_issuer.access_token(expires_in=-300)),
        "forged": bearer(token_issuer.token_signed_by_stranger()),
    }[kind]
    assert (await client.get("/services", headers=headers)).status_code == 401


async def test_list_filters(client, researcher, new_service):
    await new_service()
    await new_service(
        name="ILIFU WES",
        slug="ilifu-wes",
        kind="ga4gh_wes",
        base_url="http://ga4gh-starter-kit.ilifu.ac.za:6000",
        cloudgene_app_id=None,
        requires_credentials=False,
        credential_type="none",
        location={"country": "ZA"},
        limits={"supported_builds": ["hg19", "hg38"]},
    )
    await new_service(
        name="Michigan",
        slug="michigan",
        base_url="https://imputationserver.sph.umich.edu",
        location={"country": "US"},
        limits={"supported_builds": ["hg19", "hg38"]},
        is_active=False,
    )

    async def slugs(**params):
        response = await client.get("/services", params=params, headers=researcher)
        assert response.status_code == 200, response.text
        return [s["slug"] for s in response.json()["items"]]

    assert await slugs() == ["afrigen-d", "ilifu-wes", "michigan"]
    assert await slugs(kind="ga4gh_wes") == ["ilifu-wes"]
    assert await slugs(country="za") == ["afrigen-d", "ilifu-wes"]
    assert await slugs(build="hg19") == ["ilifu-wes", "michigan"]
    assert await slugs(is_active="false") == ["michigan"]
    assert await slugs(health_status="unknown", limit=2) == ["afrigen-d", "ilifu-wes"]


async def test_list_pagination_and_tampered_cursor(client, researcher, new_service):
    for i in range(5):
        await new_service(slug=f"svc-{i}", name=f"Service {i}")
    first = (await client.get("/services", params={"limit": 2}, headers=researcher)).json()
    second = (
        await client.get(
            "/services", params={"limit": 2, "cursor": first["next_cursor"]}, headers=researcher
        )
    ).json()
    assert [s["slug"] for s in first["items"] + second["items"]] == [
        "svc-0",
        "svc-1",
        "svc-2",
        "svc-3",
    ]
    tampered = first["next_cursor"][:-2] + (
        "AA" if not first["next_cursor"].endswith("AA") else "BB"
    )
    response = await client.get("/services", params={"cursor": tampered}, headers=researcher)
    assert response.status_code == 400


async def test_patch_changes_only_given_fields(client, admin, new_service):
    created = await new_service()
    response = await client.patch(
        f"/services/{created['id']}",
        json={"description": "H3Africa panels", "limits": {"max_samples": 1000}},
        headers=admin,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "H3Africa panels"
    assert body["limits"]["max_samples"] == 1000
    assert body["name"] == created["name"]


async def test_patch_rechecks_url_and_kind_consistency(client, admin, new_service):
    created = await new_service()
    bad_url = await client.patch(
        f"/services/{created['id']}", json={"base_url": "http://192.168.1.1"}, headers=admin
    )
    assert bad_url.status_code == 422
    bad_creds = await client.patch(
        f"/services/{created['id']}", json={"credential_type": "none"}, headers=admin
    )
    assert bad_creds.status_code == 422
    unchanged = await client.get(f"/services/{created['id']}", headers=admin)
    assert unchanged.json()["base_url"] == created["base_url"]
    assert unchanged.json()["credential_type"] == "api_token"


async def test_update_location(client, admin, new_service):
    created = await new_service()
    response = await client.put(
        f"/services/{created['id']}/location",
        json={"country": "GH", "city": "Accra", "latitude": 5.6, "longitude": -0.19},
        headers=admin,
    )
    assert response.json()["location"] == {
        "country": "GH",
        "city": "Accra",
        "data_centre": None,
        "latitude": 5.6,
        "longitude": -0.19,
    }


async def test_soft_delete_hides_and_restore_brings_back(
    client, admin, researcher, new_service, db
):
    created = await new_service()
    assert (await client.delete(f"/services/{created['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/services/{created['id']}", headers=researcher)).status_code == 404
    assert (await client.get("/services", headers=researcher)).json()["items"] == []
    hidden = await client.get(
        f"/services/{created['id']}", params={"include_deleted": True}, headers=admin
    )
    assert hidden.json()["is_active"] is False
    assert hidden.json()["deleted_at"] is not None
    assert (
        await client.post(f"/services/{created['id']}/restore", headers=admin)
    ).status_code == 200
    assert (await client.get(f"/services/{created['id']}", headers=researcher)).status_code == 200


async def test_an_admins_read_token_sees_no_deleted_service(
    client, admin, token_issuer, new_service
):
    """Issue 10 item 3: deleted services are for writers, by role *and* scope."""
    created = await new_service()
    assert (await client.delete(f"/services/{created['id']}", headers=admin)).status_code == 204
    reader = bearer(token_issuer.access_token(roles=["admin"], scopes=["services:read"]))
    one = await client.get(
        f"/services/{created['id']}", params={"include_deleted": True}, headers=reader
    )
    assert one.status_code == 404
    listed = await client.get("/services", params={"include_deleted": True}, headers=reader)
    assert listed.status_code == 403


async def test_hard_delete_is_admin_only(client, admin, service_admin, new_service, db):
    created = await new_service()
    refused = await client.delete(
        f"/services/{created['id']}", params={"hard": True}, headers=service_admin
    )
    assert refused.status_code == 403
    assert (
        await client.delete(f"/services/{created['id']}", params={"hard": True}, headers=admin)
    ).status_code == 204
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


async def test_missing_service_is_404(client, admin, researcher):
    assert (await client.get(f"/services/{uuid.uuid4()}", headers=researcher)).status_code == 404
    assert (
        await client.patch("/services/nope", json={"name": "x"}, headers=admin)
    ).status_code == 404
    assert (await client.delete("/services/nope", headers=admin)).status_code == 404


async def test_metrics_label_routes_by_template(client, researcher, new_service):
    created = await new_service()
    await client.get(f"/services/{created['id']}", headers=researcher)
    metrics = (await client.get("/metrics")).text
    assert 'route="/services/{id_or_slug}",status="200"' in metrics
    assert created["id"] not in metrics


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "Afri\x00Gen"},
        {"description": "x\x00y"},
        {"location": {"country": "za", "city": "Cape\x00Town"}},
    ],
)
async def test_nul_characters_are_422_and_nothing_is_stored(client, admin, db, overrides):
    """Postgres cannot store NUL: it is refused as bad input, never a 500."""
    response = await client.post("/services", json=service_body(**overrides), headers=admin)
    assert response.status_code == 422
    assert "NUL" in response.text
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


async def test_nul_in_a_query_filter_is_422(client, researcher):
    response = await client.get("/services", params={"country": "z\x00a"}, headers=researcher)
    assert response.status_code == 422
    panels = await client.get(
        "/reference-panels", params={"population": "a\x00"}, headers=researcher
    )
    assert panels.status_code == 422


# ---------------------------------------------------------------- found by fuzzing (issue 10)


@pytest.mark.parametrize(
    "field", ["name", "base_url", "is_active", "requires_credentials", "location", "limits"]
)
async def test_patch_with_null_for_a_required_field_is_422_and_changes_nothing(
    client, admin, new_service, field
):
    service = await new_service()
    response = await client.patch(
        f"/services/{service['id']}", json={field: None, "version": "9"}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert (await client.get(f"/services/{service['id']}", headers=admin)).json() == service


async def test_patch_with_null_clears_an_optional_field(client, admin, new_service):
    service = await new_service(description="about", version="2")
    response = await client.patch(
        f"/services/{service['id']}", json={"description": None, "version": None}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] is None
    assert response.json()["version"] is None


async def test_openapi_says_which_patch_fields_take_null(client):
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    update = schema["ServiceUpdate"]["properties"]
    assert update["name"]["type"] == "string"
    assert {"type": "null"} not in update["base_url"].get("anyOf", [])
    assert {"type": "null"} in update["description"]["anyOf"]


@pytest.mark.parametrize("field", ["min_samples", "max_samples"])
async def test_limits_beyond_the_integer_column_are_422(client, admin, db, field):
    limits = {"min_samples": 1, "max_samples": 2**31 - 1} | {field: 2**31}
    response = await client.post("/services", json=service_body(limits=limits), headers=admin)
    assert response.status_code == 422, response.text
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


async def test_unpaired_surrogate_in_a_name_is_422_and_nothing_is_stored(client, admin, db):
    # "\ud800" is valid JSON but not Unicode text: PostgreSQL's driver cannot encode it.
    body = json.dumps(service_body()).replace("AfriGen-D", "AfriGen\\ud800")
    response = await client.post(
        "/services", content=body, headers=admin | {"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]
    assert await db.scalar(select(func.count()).select_from(ImputationService)) == 0


async def test_internal_list_has_every_active_service_with_its_panels(
    client, new_service, admin, token_issuer
):
    active = await new_service()
    await new_service(slug="paused-one", name="Paused", is_active=False)
    jp = bearer(token_issuer.service_token("job-processor", "service-registry"))
    response = await client.get("/internal/services", headers=jp)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["slug"] for s in body] == [active["slug"]]
    assert body[0]["panels"] == []
    other = bearer(token_issuer.service_token("notification", "service-registry"))
    assert (await client.get("/internal/services", headers=other)).status_code == 403
    assert (await client.get("/internal/services", headers=admin)).status_code == 401
