"""Prefix routing through the gateway: the contract table, 404 for the rest, /internal never."""

import pytest

from .support import problem, raw_request

# public path -> (service, path the service receives)
CONTRACT = [
    ("/api/auth/logout", "user-service", "/auth/logout"),
    ("/api/users/me", "user-service", "/users/me"),
    ("/api/services", "service-registry", "/services"),
    ("/api/services/afrigen-d", "service-registry", "/services/afrigen-d"),
    ("/api/reference-panels/h3africa-v6", "service-registry", "/reference-panels/h3africa-v6"),
    ("/api/jobs/42/status", "job-processor", "/jobs/42/status"),
    ("/api/job-templates", "job-processor", "/job-templates"),
    ("/api/scheduled-jobs/7", "job-processor", "/scheduled-jobs/7"),
    ("/api/credentials/michigan/verify", "job-processor", "/credentials/michigan/verify"),
    ("/api/files/abc", "file-manager", "/files/abc"),
    ("/api/notifications/unread", "notification", "/notifications/unread"),
    ("/api/monitoring/alerts", "monitoring", "/monitoring/alerts"),
    ("/api/dashboard/summary", "monitoring", "/dashboard/summary"),
    ("/api/status/history", "monitoring", "/status/history"),
]


@pytest.mark.parametrize(("public", "service", "upstream_path"), CONTRACT)
async def test_each_prefix_reaches_its_service_without_api(
    client, user, upstream_logs, public, service, upstream_path
):
    response = await client.get(public + "?limit=5&cursor=a%2Fb", headers=user)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["service"] == service
    assert seen["path"] == upstream_path
    assert seen["query"] == "limit=5&cursor=a%2Fb"
    assert len(upstream_logs[service].requests) == 1


async def test_methods_and_trailing_slash_pass_through(client, user):
    response = await client.delete("/api/jobs/42/", headers=user)
    assert response.json()["method"] == "DELETE"
    assert response.json()["path"] == "/jobs/42/"


@pytest.mark.parametrize(
    "path",
    ["/api/unknown/x", "/api", "/api/", "/api/usersX", "/nothing", "/services", "/api/internal/x"],
)
async def test_unknown_prefixes_are_404_problems_never_a_default(client, user, upstream_logs, path):
    response = await client.get(path, headers=user)
    assert response.status_code == 404
    assert problem(response)["status"] == 404
    assert all(not log.requests for log in upstream_logs.values())


@pytest.mark.parametrize(
    "request_path",
    [
        "/internal/service-tokens",
        "/api/../internal/service-tokens",
        "/api/users/../../internal/api-tokens/exchange",
        "/api/%2e%2e/internal/service-tokens",
        "/api/users/%2E%2E/%2e%2e/internal/x",
        "//internal/service-tokens",
        "/api//..//internal/x",
        "/./internal/x",
        "/api/auth/%2e%2e%2f%2e%2e%2finternal/x",
        "/api/auth/..%2f..%2finternal/x",
        "/api/auth/..%5c..%5cinternal/x",
    ],
)
async def test_internal_is_never_routed_even_after_normalisation(
    serve_gateway, user, upstream_logs, request_path
):
    url = await serve_gateway()
    status, headers, _ = await raw_request(url, f"POST {request_path} HTTP/1.1", user)
    assert status in (400, 404)
    assert headers["content-type"] == "application/problem+json"
    assert all(not log.requests for log in upstream_logs.values())


async def test_normalised_paths_route_to_the_normalised_target(serve_gateway, user, upstream_logs):
    url = await serve_gateway()
    status, _, _ = await raw_request(url, "GET //api//jobs/./x/../42 HTTP/1.1", user)
    assert status == 200
    assert upstream_logs["job-processor"].requests[0]["path"] == "/jobs/42"


async def test_encoded_characters_stay_encoded_upstream(client, user):
    response = await client.get("/api/files/a%20b%3Fc", headers=user)
    assert response.json()["path"] == "/files/a%20b%3Fc"


async def test_jwks_is_routed_to_user_service_publicly(client, upstream_logs):
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["path"] == "/.well-known/jwks.json"
    assert response.json()["service"] == "user-service"
