"""The streaming proxy: what passes unchanged, what is removed, body limits, replicas, and
upstreams that are down, slow or answer garbage."""

import asyncio
import hashlib
import os
import time

import httpx
import pytest

from fedimpute_shared.embedded import free_port
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer

from .support import (
    Server,
    UpstreamLog,
    echo_service,
    garbage_server,
    pattern_bytes,
    problem,
    read_metrics,
    seen_header,
)

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.mark.parametrize("code", [201, 204, 400, 404, 409, 418, 500, 503])
async def test_upstream_status_codes_pass_unchanged(client, user, code):
    response = await client.get(f"/api/users/status/{code}", headers=user)
    assert response.status_code == code
    assert response.headers["x-custom"] == "kept"


async def test_hop_by_hop_and_gateway_owned_headers_are_removed(client, user):
    response = await client.get("/api/users/status/200", headers=user)
    assert "x-hop" not in response.headers  # named in the upstream's Connection header
    assert "keep-alive" not in response.headers
    assert "access-control-allow-origin" not in response.headers  # CORS is the gateway's
    assert len(response.headers.get_list("x-request-id")) == 1
    assert response.content == b"status body"


async def test_client_hop_by_hop_headers_are_not_forwarded(client, user):
    response = await client.get(
        "/api/jobs",
        headers={**user, "Connection": "x-secret-hop", "X-Secret-Hop": "1", "TE": "trailers"},
    )
    names = {name for name, _ in response.json()["headers"]}
    assert "x-secret-hop" not in names
    assert "te" not in names


async def test_upstream_cookies_reach_the_client_and_are_never_replayed(client, user, token_issuer):
    response = await client.post("/api/auth/set-cookie", headers=user)
    assert "session=secret-of-one-user" in response.headers["set-cookie"]
    client.cookies.clear()  # the next request comes from someone without that cookie
    seen = (await client.get("/api/users/me", headers=bearer(token_issuer.access_token()))).json()
    assert seen_header(seen, "cookie") == []


async def test_binary_body_passes_byte_identical(client, user):
    response = await client.get("/api/files/blob?size=1000003", headers=user)
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000003"
    assert response.headers["etag"] == '"blob"'
    assert response.content == pattern_bytes(0, 1000003)


async def test_range_requests_give_206(client, user):
    response = await client.get(
        "/api/files/blob?size=100000", headers={**user, "Range": "bytes=1000-1999"}
    )
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 1000-1999/100000"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == pattern_bytes(1000, 2000)


async def test_head_passes(client, user):
    response = await client.head("/api/files/blob?size=5000", headers=user)
    assert response.status_code == 200
    assert response.headers["content-length"] == "5000"
    assert response.content == b""


async def test_upload_body_streams_byte_identical(client, user):
    body = os.urandom(3 * 1024 * 1024 + 17)
    response = await client.post("/api/files", content=body, headers={**user, **OCTETS})
    seen = response.json()
    assert seen["body_size"] == len(body)
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert ["content-length", str(len(body))] in seen["headers"]


async def test_chunked_upload_streams_too(client, user):
    parts = [os.urandom(100_000) for _ in range(7)]

    async def chunks():
        for part in parts:
            yield part

    response = await client.post("/api/files", content=chunks(), headers={**user, **OCTETS})
    assert response.json()["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_request_id_is_accepted_and_passed_on(client, user):
    response = await client.get("/api/jobs", headers={**user, "X-Request-ID": "client-req-0001"})
    assert response.headers["x-request-id"] == "client-req-0001"
    assert ["x-request-id", "client-req-0001"] in response.json()["headers"]


async def test_request_id_is_created_when_missing_or_unsafe(client, user):
    response = await client.get("/api/jobs", headers={**user, "X-Request-ID": "bad id\x7f"})
    created = response.headers["x-request-id"]
    assert created != "bad id\x7f"
    assert ["x-request-id", created] in response.json()["headers"]


# ------------------------------------------------------------------ body limits


async def test_oversized_json_body_is_413_at_the_edge(make_app, user, upstream_logs):
    async with app_client(make_app(max_json_body_bytes=2048)) as client:
        response = await client.post("/api/jobs", json={"blob": "x" * 4000}, headers=user)
    assert response.status_code == 413
    body = problem(response)
    assert body["limit_bytes"] == 2048
    assert not upstream_logs["job-processor"].requests


async def test_oversized_chunked_json_body_is_413(make_app, user, upstream_logs):
    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    app = make_app(max_json_body_bytes=2048)
    async with app_client(app) as client:
        response = await client.post(
            "/api/jobs", content=chunks(), headers={**user, "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert all(r["body_size"] <= 2048 for r in upstream_logs["job-processor"].requests)


async def test_json_below_the_limit_and_uploads_above_it_pass(make_app, user):
    async with app_client(make_app(max_json_body_bytes=2048)) as client:
        small = await client.post("/api/jobs", json={"name": "x" * 1000}, headers=user)
        upload = await client.post("/api/files", content=b"v" * 100_000, headers={**user, **OCTETS})
        json_to_files = await client.post("/api/files", json={"x": "y" * 4000}, headers=user)
    assert small.status_code == 200
    assert upload.status_code == 200
    assert upload.json()["body_size"] == 100_000
    assert json_to_files.status_code == 413


# ------------------------------------------------------------------ failing upstreams


async def test_upstream_down_is_502_fast_then_503_while_cooling_down(make_app, user, token_issuer):
    dead = f"http://127.0.0.1:{free_port()}"
    app = make_app(
        job_processor_url=dead,
        upstream_max_failures=3,
        upstream_cooldown_seconds=30,
        openapi_retry_seconds=60,  # its start-up fetch of the spec is one connect failure too
    )
    async with app_client(app) as client:
        started = time.monotonic()
        responses = [await client.get("/api/jobs", headers=user) for _ in range(4)]
        elapsed = time.monotonic() - started
        metrics = await read_metrics(client, token_issuer)
    statuses = [r.status_code for r in responses]
    assert statuses[0] == 502
    assert problem(responses[0])["detail"] == "job-processor is unreachable"
    assert statuses == sorted(statuses)  # 502s until the replica is benched, then 503s
    assert statuses[-1] == 503
    assert 1 <= int(responses[-1].headers["retry-after"]) <= 30
    assert elapsed < 2
    assert 'gateway_upstream_marked_down_total{service="job-processor"} 1.0' in metrics
    assert 'kind="no_healthy_upstream",service="job-processor"' in metrics


async def test_slow_upstream_is_504_within_the_route_timeout(make_app, user):
    async with app_client(make_app(proxy_timeout_seconds=0.5)) as client:
        started = time.monotonic()
        response = await client.get("/api/jobs/slow?delay=3", headers=user)
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert problem(response)["detail"] == "job-processor did not answer in time"
    assert elapsed < 2


async def test_transfer_routes_get_the_long_timeout(make_app, user):
    app = make_app(proxy_timeout_seconds=0.3, transfer_timeout_seconds=5)
    async with app_client(app) as client:
        download = await client.get("/api/files/slow?delay=0.8", headers=user)
        api_call = await client.get("/api/jobs/slow?delay=0.8", headers=user)
    assert download.status_code == 200
    assert api_call.status_code == 504


async def test_garbage_answer_is_502_fast(make_app, user):
    async with garbage_server() as url, app_client(make_app(monitoring_url=url)) as client:
        started = time.monotonic()
        response = await client.get("/api/monitoring/alerts", headers=user)
        elapsed = time.monotonic() - started
    assert response.status_code == 502
    assert problem(response)["detail"] == "monitoring sent an invalid response"
    assert elapsed < 2


async def test_replicas_take_turns_and_a_dead_one_is_skipped(make_app, user, upstreams):
    second_log = UpstreamLog()
    second = await Server(echo_service("service-registry", second_log)).start()
    dead = f"http://127.0.0.1:{free_port()}"
    urls = f"{upstreams['service-registry']},{second.url},{dead}"
    try:
        app = make_app(service_registry_url=urls, upstream_max_failures=1)
        async with app_client(app) as client:
            statuses = [
                (await client.get("/api/services", headers=user)).status_code for _ in range(8)
            ]
            pool = app.state.gateway.pools["service-registry"]
    finally:
        await second.stop()
    assert statuses == [200] * 8  # the dead replica's connect failure moved on to the next
    assert len(second_log.requests) >= 3
    assert pool.upstreams[2].down_until > 0


async def test_client_leaving_mid_download_stops_the_upstream_transfer(
    serve_gateway, user, upstream_logs
):
    url = await serve_gateway()
    files = upstream_logs["file-manager"]
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", f"{url}/api/files/blob?size={10 * 2**30}", headers=user) as resp,
    ):
        assert resp.status_code == 200
        received = 0
        async for chunk in resp.aiter_raw():
            received += len(chunk)
            if received > 5 * 2**20:
                break
        assert files.open_streams == 1
    deadline = time.monotonic() + 5
    while files.open_streams and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert files.open_streams == 0
