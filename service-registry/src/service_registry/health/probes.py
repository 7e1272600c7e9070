"""One health probe per protocol, with no credentials and no job quota used
(`specs/external-protocols.md` §9):

- GA4GH WES: ``GET {base}/ga4gh/wes/v1/service-info``; valid when it is WES service-info
  (``type.artifact == "wes"`` or a ``workflow_type_versions`` key), tolerant of the Starter Kit's
  missing fields and bare arrays;
- Cloudgene (Michigan, TOPMed, H3Africa): ``GET {base}/api/v2/server/counters`` (anonymous),
  expecting ``queue.size``;
- DNAstack: its WES service-info (namespaced for Workbench), accepting ``auth_instruction_url``.

A probe never trusts the remote: the body is read up to a byte limit, redirects are followed by
hand (each hop re-checked for safety, loops detected), and the whole probe runs under a hard
timeout, so a hostile or broken endpoint costs at most ``timeout`` seconds and ``max_body`` bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
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

    @property
    def ok(self) -> bool:
        return self.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED)


class ProbeFailure(Exception):
    """The endpoint answered, but not with what a healthy service answers."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


def probe_url(target: ProbeTarget) -> str:
    """The health endpoint of a service, whether or not its base URL already has the prefix."""
    base = target.base_url.rstrip("/")
    if target.kind is ServiceKind.MICHIGAN:
        return base.removesuffix(CLOUDGENE_PREFIX) + CLOUDGENE_PREFIX + "/server/counters"
    if target.kind is ServiceKind.DNASTACK and target.protocol_options.get("mode") == "workbench":
        namespace = str(target.protocol_options.get("namespace", "")).strip("/")
        return f"{base}/{namespace}{WES_PREFIX}/service-info"
    return base.removesuffix(WES_PREFIX) + WES_PREFIX + "/service-info"


async def probe(client: ProbeClient, target: ProbeTarget, limits: ProbeLimits) -> ProbeResult:
    """Check one service; never raises, whatever the remote does."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            http_status, body = await fetch_json(client, probe_url(target), limits)
            details = _evaluate(target.kind, body)
    except TimeoutError:
        return ProbeResult(
            HealthStatus.TIMEOUT,
            error=f"no complete answer within {limits.timeout_seconds:g} s",
        )
    except ProbeFailure as exc:
        return ProbeResult(HealthStatus.UNHEALTHY, _elapsed_ms(started), exc.http_status, str(exc))
    except TransportError as exc:
        return ProbeResult(HealthStatus.UNHEALTHY, error=str(exc))
    elapsed = _elapsed_ms(started)
    status = HealthStatus.DEGRADED if details.pop("_partial", False) else HealthStatus.HEALTHY
    error = None
    if status is HealthStatus.DEGRADED:
        error = "answered with an incomplete health document"
    elif elapsed > limits.degraded_after_ms:
        status = HealthStatus.DEGRADED
        error = f"slow: answered in {elapsed:.0f} ms (limit {limits.degraded_after_ms:.0f} ms)"
    return ProbeResult(status, elapsed, http_status, error, details)


async def fetch_json(client: ProbeClient, url: str, limits: ProbeLimits) -> tuple[int, Any]:
    """GET ``url`` following at most ``max_redirects`` safe redirects; parse a bounded JSON body.

    Raises :class:`ProbeFailure` for anything but a 200 with JSON, and :class:`TransportError`
    for failures below HTTP (callers decide what those mean). Used by probes and panel sync.
    """
    seen: set[str] = set()
    url = _checked(url, limits)
    for _ in range(limits.max_redirects + 1):
        seen.add(url)
        try:
            response = await client.get(url, max_body=limits.max_body_bytes)
        except BodyTooLarge as exc:
            raise ProbeFailure(str(exc), exc.status) from None
        if response.status in _REDIRECT_CODES:
            url = _next_hop(url, response.status, response.headers.get("location"), seen, limits)
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


def _evaluate(kind: ServiceKind, body: Any) -> dict[str, Any]:
    """Check the document is the expected one; returns the details worth keeping."""
    if not isinstance(body, dict):
        raise ProbeFailure("the health document is not a JSON object", 200)
    if kind is ServiceKind.MICHIGAN:
        return _cloudgene_counters(body)
    return _wes_service_info(body)


def _cloudgene_counters(body: dict[str, Any]) -> dict[str, Any]:
    queue = body.get("queue")
    if isinstance(queue, dict) and isinstance(queue.get("size"), int):
        return {"queue_size": queue["size"], "users": body.get("users")}
    if "complete" in body or "users" in body:
        # A Cloudgene that answers but without its queue: alive, not fully reporting.
        return {"_partial": True}
    raise ProbeFailure("not a Cloudgene counters document", 200)


def _wes_service_info(body: dict[str, Any]) -> dict[str, Any]:
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
