"""One health probe per protocol, with no credentials and no job quota used
(`specs/external-protocols.md` §9):

- GA4GH WES: ``GET {api}/service-info`` where ``{api}`` is found among the URL as given, that
  plus ``/ga4gh/wes/v1``, and the URL without it (a 404 on one guess is not a failure; the root
  found is stored and tried first next time); valid when it is WES service-info
  (``type.artifact == "wes"`` or a ``workflow_type_versions`` key), tolerant of the Starter Kit's
  missing fields and bare arrays. 401/403 means "reachable, needs credentials": degraded;
- Cloudgene (Michigan, TOPMed, H3Africa): ``GET {base}/api/v2/server/counters`` (anonymous),
  expecting ``queue.size``, and ``GET {base}/api/v2/server`` for the maintenance flag (a server
  in maintenance is degraded, with that reason);
- DNAstack: its WES service-info (namespaced for Workbench), accepting ``auth_instruction_url``.

A probe never trusts the remote: the body is read up to a byte limit, redirects are followed by
hand (each hop re-checked for safety, loops detected), and the whole probe runs under a hard
timeout, so a hostile or broken endpoint costs at most ``timeout`` seconds and ``max_body`` bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from fedimpute_shared.urls import UnsafeURLError, check_outbound_url
from service_registry.health.http import BodyTooLarge, ProbeClient, TransportError
from service_registry.models import HealthStatus, ServiceKind

WES_PREFIX = "/ga4gh/wes/v1"
CLOUDGENE_PREFIX = "/api/v2"
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class ProbeTarget:
    """What a probe needs to know about a service (no ORM object crosses into the probe)."""

    kind: ServiceKind
    base_url: str
    protocol_options: dict[str, Any] = field(default_factory=dict)
    api_url: str | None = None  # WES: the API root found by an earlier probe or sync


@dataclass(frozen=True)
class ProbeLimits:
    timeout_seconds: float
    max_body_bytes: int
    max_redirects: int
    degraded_after_ms: float
    allow_private: bool


@dataclass(frozen=True)
class ProbeResult:
    status: HealthStatus
    response_time_ms: float | None = None
    http_status: int | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    api_url: str | None = None  # WES: where the API answered (stored, tried first next time)

    @property
    def ok(self) -> bool:
        return self.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED)


class ProbeFailure(Exception):
    """The endpoint answered, but not with what a healthy service answers."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


def cloudgene_root(base_url: str) -> str:
    """``{host}/api/v2`` whether or not the base URL already ends with it."""
    return base_url.rstrip("/").removesuffix(CLOUDGENE_PREFIX) + CLOUDGENE_PREFIX


def wes_candidates(target: ProbeTarget) -> list[str]:
    """Where a WES API may answer, in the order tried: the root found last time, the URL as
    given, then with the standard prefix, then without it (sapporo serves at its root by
    default, the Starter Kit only under the prefix). A Workbench namespace is exact."""
    base = target.base_url.rstrip("/")
    if target.kind is ServiceKind.DNASTACK and target.protocol_options.get("mode") == "workbench":
        namespace = str(target.protocol_options.get("namespace", "")).strip("/")
        return [f"{base}/{namespace}{WES_PREFIX}"]
    root = base.removesuffix(WES_PREFIX)
    guesses = [target.api_url, base, root + WES_PREFIX, root]
    return list(dict.fromkeys(g.rstrip("/") for g in guesses if g))


async def locate_wes(
    client: ProbeClient,
    target: ProbeTarget,
    limits: ProbeLimits,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, int, dict[str, Any]]:
    """(API root, HTTP status, service-info) of the first guess that serves WES service-info.

    A 404, or a JSON document that is not WES service-info (another GA4GH service at the
    root), only means "not here": the next guess is tried. Anything else is the answer.
    """
    misses: list[str] = []
    last_status: int | None = None
    for api_url in wes_candidates(target):
        try:
            status, body = await fetch_json(client, f"{api_url}/service-info", limits, headers)
            _wes_service_info(body)
        except ProbeFailure as exc:
            if exc.http_status not in (404, 200):
                raise
            misses.append(f"{api_url}/service-info: {exc}")
            last_status = exc.http_status
            continue
        return api_url, status, body
    raise ProbeFailure("no WES service-info found (" + "; ".join(misses) + ")", last_status)


async def probe(client: ProbeClient, target: ProbeTarget, limits: ProbeLimits) -> ProbeResult:
    """Check one service; never raises, whatever the remote does."""
    started = time.perf_counter()
    api_url: str | None = None
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            if target.kind is ServiceKind.MICHIGAN:
                http_status, details, concern = await _probe_cloudgene(client, target, limits)
            else:
                api_url, http_status, body = await locate_wes(client, target, limits)
                details, concern = _wes_service_info(body), None
    except TimeoutError:
        return ProbeResult(
            HealthStatus.TIMEOUT,
            error=f"no complete answer within {limits.timeout_seconds:g} s",
        )
    except ProbeFailure as exc:
        elapsed = _elapsed_ms(started)
        if exc.http_status in (401, 403):
            # It answers and asks who we are: reachable, only our (absent) credentials are missing.
            reason = f"reachable, but needs credentials (HTTP {exc.http_status})"
            return ProbeResult(HealthStatus.DEGRADED, elapsed, exc.http_status, reason)
        return ProbeResult(HealthStatus.UNHEALTHY, elapsed, exc.http_status, str(exc))
    except TransportError as exc:
        return ProbeResult(HealthStatus.UNHEALTHY, error=str(exc))
    elapsed = _elapsed_ms(started)
    status, error = HealthStatus.HEALTHY, concern
    if concern is not None:
        status = HealthStatus.DEGRADED
    elif elapsed > limits.degraded_after_ms:
        status = HealthStatus.DEGRADED
        error = f"slow: answered in {elapsed:.0f} ms (limit {limits.degraded_after_ms:.0f} ms)"
    return ProbeResult(status, elapsed, http_status, error, details, api_url)


async def fetch_json(
    client: ProbeClient,
    url: str,
    limits: ProbeLimits,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """GET ``url`` following at most ``max_redirects`` safe redirects; parse a bounded JSON body.

    Raises :class:`ProbeFailure` for anything but a 200 with JSON, and :class:`TransportError`
    for failures below HTTP (callers decide what those mean). Used by probes and panel sync.
    ``headers`` (credentials) are sent to the first URL only, never to a redirect target.
    """
    seen: set[str] = set()
    url = _checked(url, limits)
    for _ in range(limits.max_redirects + 1):
        seen.add(url)
        try:
            response = await client.get(url, max_body=limits.max_body_bytes, headers=headers)
        except BodyTooLarge as exc:
            raise ProbeFailure(str(exc), exc.status) from None
        if response.status in _REDIRECT_CODES:
            url = _next_hop(url, response.status, response.headers.get("location"), seen, limits)
            headers = None
            continue
        if response.status != 200:
            raise ProbeFailure(f"HTTP {response.status}", response.status)
        return response.status, _parse_json(response.body, response.headers.get("content-type"))
    raise ProbeFailure(f"more than {limits.max_redirects} redirects")


def _checked(url: str, limits: ProbeLimits) -> str:
    """Re-check a URL before calling it (scheme, credentials, literal addresses)."""
    try:
        return check_outbound_url(url, allow_private=limits.allow_private)
    except UnsafeURLError as exc:
        raise ProbeFailure(f"refused: {exc}") from None


def _next_hop(
    url: str, status: int, location: str | None, seen: set[str], limits: ProbeLimits
) -> str:
    if not location:
        raise ProbeFailure("redirect without a Location header", status)
    target = urljoin(url, location)
    if target in seen:
        raise ProbeFailure("redirect loop", status)
    try:
        return check_outbound_url(target, allow_private=limits.allow_private)
    except UnsafeURLError as exc:
        raise ProbeFailure(f"refused redirect: {exc}", status) from None


def _parse_json(raw: bytes, content_type: str | None) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        kind = (content_type or "unknown").split(";")[0]
        raise ProbeFailure(f"not a JSON answer ({kind})", 200) from None


async def _probe_cloudgene(
    client: ProbeClient, target: ProbeTarget, limits: ProbeLimits
) -> tuple[int, dict[str, Any], str | None]:
    """``/server/counters`` says it is alive; ``/server`` says whether it is in maintenance
    (Cloudgene keeps answering counters while submissions answer 503). Both in parallel."""
    root = cloudgene_root(target.base_url)
    counters: tuple[int, Any] | BaseException
    server: tuple[int, Any] | BaseException
    counters, server = await asyncio.gather(
        fetch_json(client, f"{root}/server/counters", limits),
        fetch_json(client, f"{root}/server", limits),
        return_exceptions=True,
    )
    if isinstance(counters, BaseException):
        raise counters
    http_status, body = counters
    if not isinstance(body, dict):
        raise ProbeFailure("the health document is not a JSON object", 200)
    details, concern = _cloudgene_counters(body)
    if not isinstance(server, BaseException) and _in_maintenance(server[1]):
        concern = "in maintenance: the server answers but refuses submissions (HTTP 503)"
        details["maintenance"] = True
    return http_status, details, concern


def _in_maintenance(server: Any) -> bool:
    """The flag of ``GET /api/v2/server``, spelled ``maintenace`` by Cloudgene (sic)."""
    if not isinstance(server, dict):
        return False
    return server.get("maintenace") is True or server.get("maintenance") is True


def _cloudgene_counters(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    queue = body.get("queue")
    if isinstance(queue, dict) and isinstance(queue.get("size"), int):
        return {"queue_size": queue["size"], "users": body.get("users")}, None
    if "complete" in body or "users" in body:
        # A Cloudgene that answers but without its queue: alive, not fully reporting.
        return {}, "answered with an incomplete health document"
    raise ProbeFailure("not a Cloudgene counters document", 200)


def _wes_service_info(body: Any) -> dict[str, Any]:
    """The details worth keeping from WES service-info; ProbeFailure when it is not one."""
    if not isinstance(body, dict):
        raise ProbeFailure("the service-info is not a JSON object", 200)
    service_type = body.get("type")
    artifact = service_type.get("artifact") if isinstance(service_type, dict) else None
    if artifact != "wes" and "workflow_type_versions" not in body:
        raise ProbeFailure("not a GA4GH WES service-info document", 200)
    details: dict[str, Any] = {
        "name": body.get("name"),
        "version": body.get("version"),
        "workflow_types": sorted(workflow_types(body.get("workflow_type_versions"))),
    }
    return {k: v for k, v in details.items() if v}


def workflow_types(value: Any) -> dict[str, list[str]]:
    """``workflow_type_versions`` in the spec's form or the Starter Kit's bare arrays."""
    if not isinstance(value, dict):
        return {}
    types: dict[str, list[str]] = {}
    for name, versions in value.items():
        if isinstance(versions, dict):
            versions = versions.get("workflow_type_version", [])
        if isinstance(versions, list):
            types[str(name)] = [str(v) for v in versions]
    return types


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
