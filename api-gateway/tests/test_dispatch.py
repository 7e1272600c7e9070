"""Proxied /api/... requests skip FastAPI's middleware stack (api_gateway.dispatch) and still get
everything it gave them: request ids, problem+json errors (a crash included), CORS, metrics."""

from __future__ import annotations

import logging

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from api_gateway import proxy
from api_gateway.dispatch import own_api_paths
from fedimpute_shared.testing.client import app_client


class SeenByFastAPI:
    """A middleware inside FastAPI's stack: records every HTTP path that went through it."""

    paths: list[str] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            SeenByFastAPI.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def test_proxied_requests_skip_the_fastapi_stack_and_the_rest_do_not(make_app, user):
    app = make_app()
    app.add_middleware(SeenByFastAPI)
    SeenByFastAPI.paths.clear()
    async with app_client(app) as client:
        proxied = await client.get("/api/jobs", headers=user)
        refused = await client.get("/api/jobs")  # no token: a problem from the short stack
        own = await client.get("/api/openapi.json")
        health = await client.get("/health")
        odd = await client.get("/internal/x")  # not /api/: the full stack's catch-all
    assert (proxied.status_code, refused.status_code, own.status_code) == (200, 401, 200)
    assert (health.status_code, odd.status_code) == (200, 404)
    assert SeenByFastAPI.paths == ["/api/openapi.json", "/health", "/internal/x"]
    for response in (proxied, refused, odd):
        assert response.headers["x-request-id"]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 401
    assert refused.json()["instance"] == "/api/jobs"


async def test_a_crash_in_the_proxy_is_a_logged_500_problem(make_app, user, monkeypatch, caplog):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(proxy, "upstream_request_headers", broken)
    app = make_app()
    root = logging.getLogger()
    root.addHandler(caplog.handler)  # the app's logging set-up replaced the root's handlers
    try:
        async with app_client(app) as client:
            response = await client.get("/api/jobs", headers=user)
    finally:
        root.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    assert "boom" not in response.text
    assert any("unhandled error on GET /api/jobs" in r.getMessage() for r in caplog.records)


async def test_proxied_requests_are_counted_with_their_route(make_app, user):
    app = make_app()
    async with app_client(app) as client:
        await client.get("/api/jobs", headers=user)
        await client.get("/api/jobs")
    text = app.state.metrics.render().decode()
    assert 'http_requests_total{method="GET",route="/api/jobs",status="200"} 1.0' in text
    assert 'http_requests_total{method="GET",route="/api/jobs",status="401"} 1.0' in text


def test_the_gateways_own_api_routes_are_fixed_paths(make_app):
    assert own_api_paths(make_app()) == {"/api/openapi.json"}


def test_an_own_api_route_with_parameters_is_refused(make_app):
    app = make_app()
    app.add_api_route("/api/own/{x}", lambda x: x)
    with pytest.raises(RuntimeError, match="fixed HTTP path"):
        own_api_paths(app)
