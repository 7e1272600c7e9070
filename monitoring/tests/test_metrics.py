"""Metrics: /metrics scraped and reduced to key series (bounded, garbage refused), the host's
resources, the stream's consumer lag; the latest values and a series over time."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from monitoring_service.telemetry.parse import Garbage, parse_totals
from monitoring_service.telemetry.series import key_series, quantile

from .test_fleet import URLS


def exposition(
    requests: int, errors: int, fast: int, slow: int, *, lag: int = 0, jobs_failed: int = 0
) -> str:
    """What a service's /metrics says after that many requests (fast < 10 ms, slow ~ 0.4 s)."""
    ok = requests - errors
    return f"""# HELP http_requests_total HTTP requests by method, route template and status.
# TYPE http_requests_total counter
http_requests_total{{method="GET",route="/files",status="200"}} {ok}
http_requests_total{{method="POST",route="/files",status="503"}} {errors}
http_requests_total{{method="GET",route="/health",status="200"}} 999
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{{method="GET",route="/files",le="0.01"}} {fast}
http_request_duration_seconds_bucket{{method="GET",route="/files",le="0.5"}} {fast + slow}
http_request_duration_seconds_bucket{{method="GET",route="/files",le="+Inf"}} {fast + slow}
http_request_duration_seconds_count{{method="GET",route="/files"}} {fast + slow}
http_request_duration_seconds_sum{{method="GET",route="/files"}} 1.0
http_request_duration_seconds_bucket{{method="GET",route="/health",le="0.01"}} 0
http_request_duration_seconds_bucket{{method="GET",route="/health",le="0.5"}} 0
http_request_duration_seconds_bucket{{method="GET",route="/health",le="+Inf"}} 5000
# TYPE notification_consumer_lag gauge
notification_consumer_lag {lag}
# TYPE job_processor_queue_depth gauge
job_processor_queue_depth{{service="sandbox-wes"}} 3
job_processor_queue_depth{{service="michigan"}} 4
# TYPE job_processor_jobs_finished_total counter
job_processor_jobs_finished_total{{outcome="completed"}} 10
job_processor_jobs_finished_total{{outcome="failed"}} {jobs_failed}
"""


def test_totals_leave_out_the_probe_routes():
    totals = parse_totals(exposition(100, 5, 90, 10, lag=7), max_samples=1000)
    assert totals.requests == 100
    assert totals.errors == 5
    assert totals.buckets == {0.01: 90, 0.5: 100, float("inf"): 100}
    assert totals.consumer_lag == 7
    assert totals.queue_depth == 7
    assert totals.jobs == {"completed": 10, "failed": 0}


def test_rates_and_quantiles_over_the_interval():
    before = parse_totals(exposition(100, 5, 90, 10), 1000)
    after = parse_totals(exposition(300, 25, 190, 110, jobs_failed=4), 1000)
    series = key_series(before, after, seconds=10)
    assert series["request_rate"] == 20.0
    assert series["error_rate"] == 10.0  # 20 errors among 200 requests
    assert series["latency_p50_ms"] == 10.0  # the fast half ends at the 10 ms bound
    assert 400 < series["latency_p95_ms"] < 500
    assert series["jobs_failed"] == 4
    assert key_series(None, after, 0) == {"consumer_lag": 0, "queue_depth": 7}  # baseline only


def test_a_restarted_service_counter_reset_is_not_a_negative_rate():
    before = parse_totals(exposition(1000, 0, 900, 100), 1000)
    after = parse_totals(exposition(50, 0, 50, 0), 1000)
    series = key_series(before, after, seconds=10)
    assert series["request_rate"] == 5.0
    assert series["error_rate"] == 0.0


def test_quantile():
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {1.0: 0, float("inf"): 0}) is None
    assert quantile(0.5, {1.0: 10, 2.0: 20, float("inf"): 20}) == 1.0
    assert quantile(0.75, {1.0: 10, 2.0: 20, float("inf"): 20}) == 1.5
    assert quantile(0.99, {1.0: 10, float("inf"): 20}) == 1.0  # past the last bound


@pytest.mark.parametrize(
    "text",
    [
        "garbage here {{{",
        'http_requests_total{route="/x" 12',
        "\x00\x01\x02 binary",
        'x{le="a"} notanumber',
    ],
)
def test_garbage_is_refused(text):
    with pytest.raises(Garbage):
        parse_totals(text, 1000)


def test_too_many_samples_is_refused():
    text = "\n".join(f'many{{i="{i}"}} 1' for i in range(200))
    with pytest.raises(Garbage, match="more than 100 samples"):
        parse_totals(text, 100)


@pytest.fixture
def fleet_metrics():
    """Every service's /metrics, answering the ``bodies`` set by the test (default: fine)."""
    bodies: dict[str, object] = {}
    with respx.mock(assert_all_called=False) as mock:
        for name, url in URLS.items():

            def answer(request, name=name):
                body = bodies.get(name, exposition(100, 0, 100, 0))
                return (
                    body
                    if isinstance(body, httpx.Response)
                    else httpx.Response(200, text=str(body))
                )

            mock.get(f"{url}/metrics").mock(side_effect=answer)
        mock.route().pass_through()
        yield bodies


async def test_scrape_stores_key_series_and_garbage_is_reported(
    app, client, admin, fleet_metrics, redis, stream
):
    await redis.xadd(stream, {"a": "1"})
    await redis.xgroup_create(stream, "notification", id="0")
    await redis.xadd(stream, {"a": "2"})
    scraper = app.state.scraper
    first = await scraper.scrape_once()
    assert "request_rate" not in first["file-manager"]  # the baseline
    fleet_metrics["file-manager"] = exposition(200, 10, 150, 50)
    fleet_metrics["notification"] = "this is not { prometheus"
    fleet_metrics["user-service"] = httpx.Response(200, text="x" * 5_000_000)
    fleet_metrics["api-gateway"] = httpx.Response(500)
    second = await scraper.scrape_once()
    assert second["file-manager"]["scrape_ok"] == 1.0
    assert second["file-manager"]["error_rate"] == 10.0
    assert second["file-manager"]["latency_p95_ms"] > 10
    assert second["notification"] == {"scrape_ok": 0.0}
    assert second["host"]["disk_percent:/"] > 0
    assert 0 <= second["host"]["memory_percent"] <= 100
    assert second["event-stream"] == {"consumer_lag:notification": 2.0}

    body = (await client.get("/monitoring/metrics", headers=admin)).json()
    by_source = {s["source"]: s for s in body["sources"]}
    assert (
        by_source["notification"]["scrape_error"]
        == "/metrics is garbage: not Prometheus text: ValueError"
    )
    assert by_source["user-service"]["scrape_error"] == "/metrics larger than 4194304 bytes"
    assert by_source["api-gateway"]["scrape_error"] == "/metrics answered 500"
    assert by_source["file-manager"]["series"]["error_rate"] == 10.0
    assert by_source["file-manager"]["scrape_error"] is None

    series = await client.get("/monitoring/metrics/file-manager/scrape_ok", headers=admin)
    assert [p["value"] for p in series.json()["points"]] == [1.0, 1.0]
    missing = await client.get("/monitoring/metrics/file-manager/nothing", headers=admin)
    assert missing.status_code == 404
    bad = await client.get("/monitoring/metrics/file-manager/scrape_ok?hours=0", headers=admin)
    assert bad.status_code == 422


async def test_a_hung_metrics_endpoint_does_not_hold_the_round(make_app, db):
    from fedimpute_shared.testing.client import app_client

    async def hang(request):
        await asyncio.sleep(5)

    application = make_app(fleet_probe_timeout_seconds=0.3)
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{URLS['notification']}/metrics").mock(side_effect=hang)
        for name, url in URLS.items():
            if name != "notification":
                mock.get(f"{url}/metrics").respond(text=exposition(1, 0, 1, 0))
        mock.route().pass_through()
        async with app_client(application):
            result = await application.state.scraper.scrape_once()
    assert result["notification"] == {"scrape_ok": 0.0}
    assert application.state.scraper.last_errors["notification"] == "unreachable: TimeoutError"


async def test_scrapes_carry_a_service_token_for_the_scraped_service(app, upstreams):
    """The gateway's /metrics answers only a service token addressed to it."""
    import json as _json

    def gateway(request):
        if request.headers.get("authorization") != "Bearer service-token":
            return httpx.Response(401)
        return httpx.Response(200, text=exposition(1, 0, 1, 0))

    upstreams.get(f"{URLS['api-gateway']}/metrics").mock(side_effect=gateway)
    upstreams.get(f"{URLS['job-processor']}/internal/jobs/stats").respond(503)
    for name, url in URLS.items():
        if name != "api-gateway":
            upstreams.get(f"{url}/metrics").respond(text=exposition(1, 0, 1, 0))
    result = await app.state.scraper.scrape_once()
    assert result["api-gateway"]["scrape_ok"] == 1.0
    token_calls = upstreams.routes[0].calls  # user-service's /internal/service-tokens
    audiences = {_json.loads(call.request.content)["audience"] for call in token_calls}
    assert {"api-gateway", "file-manager"} <= audiences


async def test_without_user_service_the_scrape_still_goes_tokenless(app, fleet_metrics):
    result = await app.state.scraper.scrape_once()  # the token endpoint is unreachable here
    assert result["file-manager"]["scrape_ok"] == 1.0
