"""Probes against real sockets: the right request per kind, and every hostile answer."""

import time
import tracemalloc

import pytest

from service_registry.health.http import probe_client
from service_registry.health.probes import (
    ProbeLimits,
    ProbeTarget,
    cloudgene_root,
    probe,
    wes_candidates,
)
from service_registry.models import HealthStatus, ServiceKind

from .remotes import (
    CLOUDGENE_COUNTERS,
    STARTER_KIT_SERVICE_INFO,
    WES_SERVICE_INFO,
    close_at_once,
    hang,
    huge,
    json_body,
    redirect,
    respond,
)

LIMITS = ProbeLimits(
    timeout_seconds=1.0,
    max_body_bytes=1_048_576,
    max_redirects=3,
    degraded_after_ms=300,
    allow_private=True,
)
WES_PATH = "/ga4gh/wes/v1/service-info"
COUNTERS_PATH = "/api/v2/server/counters"


@pytest.fixture
async def client(settings):
    return probe_client(True, LIMITS.timeout_seconds)


def wes(remote, **kw):
    return ProbeTarget(ServiceKind.GA4GH_WES, remote.url, kw)


@pytest.mark.parametrize(
    ("kind", "base", "options", "expected"),
    [
        (
            ServiceKind.GA4GH_WES,
            "http://h:6000",
            {},
            ["http://h:6000", "http://h:6000/ga4gh/wes/v1"],
        ),
        (
            ServiceKind.GA4GH_WES,
            "http://h:6000/ga4gh/wes/v1/",
            {},
            ["http://h:6000/ga4gh/wes/v1", "http://h:6000"],
        ),
        (
            ServiceKind.DNASTACK,
            "https://w.example",
            {"mode": "cromwell"},
            ["https://w.example", "https://w.example/ga4gh/wes/v1"],
        ),
        (
            ServiceKind.DNASTACK,
            "https://w.example",
            {"mode": "workbench", "namespace": "ns1"},
            ["https://w.example/ns1/ga4gh/wes/v1"],
        ),
    ],
)
def test_wes_api_roots_tried_in_order(kind, base, options, expected):
    assert wes_candidates(ProbeTarget(kind, base, options)) == expected


def test_the_root_found_last_time_is_tried_first():
    target = ProbeTarget(ServiceKind.GA4GH_WES, "http://h", {}, "http://h/ga4gh/wes/v1")
    assert wes_candidates(target) == ["http://h/ga4gh/wes/v1", "http://h"]


@pytest.mark.parametrize("base", ["https://h", "https://h/api/v2", "https://h/api/v2/"])
def test_cloudgene_root(base):
    assert cloudgene_root(base) == "https://h/api/v2"


@pytest.mark.parametrize(
    ("served_at", "given"),
    [("/ga4gh/wes/v1", ""), ("", ""), ("", "/ga4gh/wes/v1"), ("/ga4gh/wes/v1", "/ga4gh/wes/v1")],
    ids=["prefix-given-root", "root-given-root", "root-given-prefix", "prefix-given-prefix"],
)
async def test_wes_api_root_is_found_and_a_404_guess_is_no_failure(
    remote, client, served_at, given
):
    remote.routes[f"{served_at}/service-info"] = json_body(WES_SERVICE_INFO)
    target = ProbeTarget(ServiceKind.GA4GH_WES, remote.url + given)
    result = await probe(client, target, LIMITS)
    assert result.status is HealthStatus.HEALTHY, result.error
    assert result.api_url == remote.url + served_at
    again = await probe(
        client, ProbeTarget(ServiceKind.GA4GH_WES, remote.url + given, {}, result.api_url), LIMITS
    )
    assert again.status is HealthStatus.HEALTHY
    assert remote.hits[f"{served_at}/service-info"] == 2


async def test_no_wes_anywhere_is_unhealthy_naming_each_guess(remote, client):
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.http_status == 404
    assert f"{remote.url}/service-info" in result.error
    assert f"{remote.url}/ga4gh/wes/v1/service-info" in result.error


@pytest.mark.parametrize("status", [401, 403])
async def test_service_info_behind_auth_is_degraded_not_unhealthy(remote, client, status):
    remote.routes[WES_PATH] = json_body(
        {"msg": "Unauthorized", "status_code": status}, status=status
    )
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.DEGRADED
    assert result.error == f"reachable, but needs credentials (HTTP {status})"


async def test_cloudgene_in_maintenance_is_degraded(remote, client):
    remote.routes[COUNTERS_PATH] = json_body(CLOUDGENE_COUNTERS)
    remote.routes["/api/v2/server"] = json_body({"name": "MIS", "apps": [], "maintenace": True})
    result = await probe(client, ProbeTarget(ServiceKind.MICHIGAN, remote.url), LIMITS)
    assert result.status is HealthStatus.DEGRADED
    assert result.error.startswith("in maintenance")


async def test_wes_spec_service_info_is_healthy(remote, client):
    remote.routes[WES_PATH] = json_body(WES_SERVICE_INFO)
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.HEALTHY
    assert result.http_status == 200
    assert result.details["workflow_types"] == ["CWL", "WDL"]


async def test_starter_kit_quirks_are_tolerated(remote, client):
    remote.routes[WES_PATH] = json_body(STARTER_KIT_SERVICE_INFO)
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.HEALTHY
    assert result.details["workflow_types"] == ["NEXTFLOW", "WDL"]


async def test_dnastack_singular_auth_field_is_fine(remote, client):
    info = {k: v for k, v in WES_SERVICE_INFO.items() if k != "auth_instructions_url"} | {
        "auth_instruction_url": "https://x"
    }
    remote.routes[WES_PATH] = json_body(info)
    target = ProbeTarget(ServiceKind.DNASTACK, remote.url, {"mode": "cromwell"})
    assert (await probe(client, target, LIMITS)).status is HealthStatus.HEALTHY


async def test_cloudgene_counters(remote, client):
    remote.routes[COUNTERS_PATH] = json_body(CLOUDGENE_COUNTERS)
    result = await probe(client, ProbeTarget(ServiceKind.MICHIGAN, remote.url), LIMITS)
    assert result.status is HealthStatus.HEALTHY
    assert result.details["queue_size"] == 3


async def test_cloudgene_without_queue_is_degraded(remote, client):
    remote.routes[COUNTERS_PATH] = json_body({"complete": {}, "users": 1})
    result = await probe(client, ProbeTarget(ServiceKind.MICHIGAN, remote.url), LIMITS)
    assert result.status is HealthStatus.DEGRADED


async def test_slow_answer_is_degraded(remote, client):
    remote.routes[WES_PATH] = json_body(WES_SERVICE_INFO, delay=0.4)
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.DEGRADED
    assert "slow" in result.error


@pytest.mark.parametrize(
    ("behaviour", "status", "error"),
    [
        (
            respond(200, b"<html>maintenance</html>", "text/html"),
            HealthStatus.UNHEALTHY,
            "not a JSON answer (text/html)",
        ),
        (
            respond(200, b'{"broken": ', "application/json"),
            HealthStatus.UNHEALTHY,
            "not a JSON answer",
        ),
        (json_body(["a", "list"]), HealthStatus.UNHEALTHY, "not a JSON object"),
        (json_body({"hello": "world"}), HealthStatus.UNHEALTHY, "not a GA4GH WES service-info"),
        (
            json_body({"msg": "boom", "status_code": 500}, status=500),
            HealthStatus.UNHEALTHY,
            "HTTP 500",
        ),
        (close_at_once(), HealthStatus.UNHEALTHY, "closed the connection"),
        (
            respond(200, b"", "text/plain", **{"Content-Length": "oops"}),
            HealthStatus.UNHEALTHY,
            "broke the HTTP protocol",
        ),
        (hang(), HealthStatus.TIMEOUT, "within 1 s"),
    ],
    ids=[
        "html",
        "invalid-json",
        "json-list",
        "wrong-document",
        "http-500",
        "closed",
        "bad-length",
        "silent",
    ],
)
async def test_broken_answers_are_recorded_not_raised(remote, client, behaviour, status, error):
    remote.routes[WES_PATH] = behaviour
    started = time.perf_counter()
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is status
    assert error in result.error
    assert time.perf_counter() - started < LIMITS.timeout_seconds + 0.5


async def test_redirect_loop_is_detected(remote, client):
    remote.routes[WES_PATH] = redirect("/a")
    remote.routes["/a"] = redirect(WES_PATH)
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.UNHEALTHY
    assert result.error == "redirect loop"


async def test_safe_redirect_is_followed(remote, client):
    remote.routes[WES_PATH] = redirect("/moved/service-info", status=301)
    remote.routes["/moved/service-info"] = json_body(WES_SERVICE_INFO)
    assert (await probe(client, wes(remote), LIMITS)).status is HealthStatus.HEALTHY


async def test_redirect_to_private_address_is_refused(remote, client):
    remote.routes[WES_PATH] = redirect("http://169.254.169.254/latest/meta-data")
    result = await probe(client, wes(remote), LIMITS)
    assert result.status is HealthStatus.UNHEALTHY
    assert "metadata" in result.error
    assert remote.hits[WES_PATH] == 1


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_ten_megabyte_body_is_cut_off_with_bounded_memory(remote, client, declare_length):
    remote.routes[WES_PATH] = huge(10 * 1024 * 1024, declare_length)
    tracemalloc.start()
    result = await probe(client, wes(remote), LIMITS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.status is HealthStatus.UNHEALTHY
    assert "larger than 1048576 bytes" in result.error
    assert peak < 4 * 1024 * 1024


async def test_connection_refused_is_unhealthy(client):
    result = await probe(client, ProbeTarget(ServiceKind.GA4GH_WES, "http://127.0.0.1:9"), LIMITS)
    assert result.status is HealthStatus.UNHEALTHY
    assert "connection" in result.error


async def test_private_target_refused_at_connect_time(remote, settings):
    guarded = probe_client(False, LIMITS.timeout_seconds)
    remote.routes[WES_PATH] = json_body(WES_SERVICE_INFO)
    result = await probe(guarded, wes(remote), LIMITS)
    assert result.status is HealthStatus.UNHEALTHY
    assert "loopback" in result.error
    assert remote.hits[WES_PATH] == 0
