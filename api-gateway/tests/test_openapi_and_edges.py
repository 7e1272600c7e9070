"""The merged OpenAPI document, Swagger UI, CORS, health, readiness and metrics."""

import asyncio
import time

import pytest
from pydantic import ValidationError

from api_gateway.config import Settings
from api_gateway.openapi import merge_specs, public_path
from fedimpute_shared.testing.client import app_client

from .support import read_metrics, spec_for


async def wait_for_document(client, *, services: int = 6) -> dict:
    deadline = time.monotonic() + 10
    while True:
        document = (await client.get("/api/openapi.json")).json()
        if (
            not document["x-fedimpute-unavailable-services"]
            and len(document["paths"]) >= 2 * services
        ):
            return document
        assert time.monotonic() < deadline, document
        await asyncio.sleep(0.05)


async def test_merged_document_has_public_paths_only(client):
    document = await wait_for_document(client)
    paths = set(document["paths"])
    assert {"/api/users", "/api/services", "/api/jobs", "/api/files"} <= paths
    assert "/api/services/{item_id}" in paths
    assert "/api/status" in paths  # monitoring's public status page
    assert not [
        p for p in paths if "internal" in p or p.endswith(("/health", "/ready", "/metrics"))
    ]
    assert all(p.startswith("/api/") for p in paths)


async def test_components_merge_without_collisions(client):
    document = await wait_for_document(client)
    schemas = document["components"]["schemas"]
    # Problem is identical everywhere: kept once; Item differs: one per service
    assert "Problem" in schemas
    assert "Item" not in schemas
    assert schemas["job-processor.Item"]["properties"] == {"jobs_field": {"type": "string"}}
    assert "job-processor.Page_Item_" in schemas  # refers to a renamed schema: renamed too
    jobs = document["paths"]["/api/jobs"]["get"]["responses"]["200"]
    ref = jobs["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/job-processor.Page_Item_"
    page = schemas["job-processor.Page_Item_"]["properties"]["items"]["items"]["$ref"]
    assert page == "#/components/schemas/job-processor.Item"
    problem_ref = document["paths"]["/api/jobs"]["get"]["responses"]["404"]
    assert problem_ref["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert list(document["components"]["securitySchemes"]) == ["HTTPBearer"]


async def test_operation_ids_stay_unique(client):
    document = await wait_for_document(client)
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(ids) == len(set(ids))
    assert "list_items" in ids
    assert "service-registry.list_items" in ids


async def test_unavailable_services_are_listed_and_retried(make_app, upstreams):
    from fedimpute_shared.embedded import free_port

    app = make_app(monitoring_url=f"http://127.0.0.1:{free_port()}")
    async with app_client(app) as client:
        deadline = time.monotonic() + 5
        while True:
            document = (await client.get("/api/openapi.json")).json()
            if len(document["paths"]) >= 10:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert document["x-fedimpute-unavailable-services"] == ["monitoring"]
    assert "/api/status" not in document["paths"]


def test_merge_is_deterministic_and_pure():
    specs = {s: spec_for(s) for s in ("job-processor", "file-manager")}
    first = merge_specs(specs, title="t", version="1", description="d")
    again = merge_specs(specs, title="t", version="1", description="d")
    assert first == again
    assert specs["job-processor"]["components"]["schemas"]["Item"]["properties"] == {
        "jobs_field": {"type": "string"}
    }


def test_every_public_operation_documents_what_the_gateway_answers():
    specs = {s: spec_for(s) for s in ("job-processor", "file-manager")}
    document = merge_specs(specs, title="t", version="1", description="d")
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert operations
    for operation in operations:
        responses = operation["responses"]
        assert {"429", "502", "503", "504"} <= set(responses)
        for code, response in responses.items():
            if code[0] in "45":
                assert response["content"] == problem


@pytest.mark.parametrize(
    ("service", "path", "public"),
    [
        ("user-service", "/auth/login", "/api/auth/login"),
        ("user-service", "/.well-known/jwks.json", "/.well-known/jwks.json"),
        ("user-service", "/internal/service-tokens", None),
        ("user-service", "/services", None),  # not this service's prefix
        ("monitoring", "/dashboard/summary", "/api/dashboard/summary"),
        ("monitoring", "/metrics", None),
    ],
)
def test_public_path(service, path, public):
    assert public_path(service, path) == public


async def test_swagger_ui_shows_the_merged_document(client):
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "/api/openapi.json" in response.text


# ------------------------------------------------------------------ CORS


async def test_preflight_from_a_listed_origin(make_app):
    app = make_app(cors_origins=["https://fedimpute.example"])
    async with app_client(app) as client:
        response = await client.options(
            "/api/files/uploads",
            headers={
                "Origin": "https://fedimpute.example",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "Authorization, Upload-Offset, Tus-Resumable",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://fedimpute.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in response.headers["access-control-allow-methods"]
    assert "upload-offset" in response.headers["access-control-allow-headers"].lower()


async def test_cors_exposes_tus_and_rate_limit_headers(make_app, user):
    app = make_app(cors_origins=["https://fedimpute.example"])
    async with app_client(app) as client:
        response = await client.get(
            "/api/jobs", headers={**user, "Origin": "https://fedimpute.example"}
        )
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "location",
        "upload-metadata",
    } <= exposed
    assert {"ratelimit", "ratelimit-policy", "retry-after", "x-request-id"} <= exposed
    assert response.headers["access-control-allow-origin"] == "https://fedimpute.example"


async def test_unlisted_origins_get_no_cors_headers(make_app, user):
    app = make_app(cors_origins=["https://fedimpute.example"])
    async with app_client(app) as client:
        response = await client.get("/api/jobs", headers={**user, "Origin": "https://evil.example"})
        preflight = await client.options(
            "/api/jobs",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert "access-control-allow-origin" not in response.headers
    assert preflight.status_code == 400


def test_wildcard_origin_is_refused():
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        Settings(cors_origins="*")


def test_list_settings_read_comma_separated_or_json(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    monkeypatch.setenv("PUBLIC_ROUTES", "POST /api/auth/login,GET|HEAD /api/status/**")
    settings = Settings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.0/8"]
    assert settings.public_routes == ["POST /api/auth/login", "GET|HEAD /api/status/**"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"public_routes": "GET api/no-slash"},
        {"login_routes": "POST /a/**/b"},
        {"rate_limit_login": "lots"},
        {"trusted_proxies": "not-an-ip"},
    ],
)
def test_bad_configuration_is_refused_at_start(overrides):
    with pytest.raises(ValidationError):
        Settings(**overrides)


def test_upstream_urls_take_several_replicas():
    settings = Settings(service_registry_url="http://a:8002, http://b:8002")
    assert settings.upstream_urls()["service-registry"] == ["http://a:8002", "http://b:8002"]


# ------------------------------------------------------------------ health and metrics


async def test_health_and_readiness_check_redis(client):
    assert (await client.get("/health")).json()["service"] == "api-gateway"
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok"}


async def test_readiness_fails_without_redis(make_app):
    from fedimpute_shared.embedded import free_port

    async with app_client(make_app(redis_url=f"redis://127.0.0.1:{free_port()}/2")) as client:
        ready = await client.get("/ready")
    assert ready.status_code == 503


async def test_metrics_count_proxied_requests_by_prefix(client, user, token_issuer):
    await client.get("/api/jobs/1", headers=user)
    await client.get("/api/jobs/2", headers=user)
    text = await read_metrics(client, token_issuer)
    assert 'gateway_proxy_requests_total{service="job-processor",status="200"} 2.0' in text
    assert 'http_requests_total{method="GET",route="/api/jobs",status="200"} 2.0' in text
    assert 'gateway_rate_limit_decisions_total{limit_class="default",outcome="allowed"}' in text
