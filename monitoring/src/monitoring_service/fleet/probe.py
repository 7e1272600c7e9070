"""Probing one fleet service: ``GET /health`` then ``GET /ready``, each under a short timeout.

A service is ``up`` when both answer 200, ``degraded`` when it is alive but not ready (its
database or Redis is unreachable, its migrations are behind), ``down`` when /health does not
answer 200 in time. The body read is bounded: a service is ours, but a broken one can send
anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from monitoring_service.models import FleetStatus

__all__ = ["ProbeResult", "probe", "probe_all"]

_MAX_BODY = 16_384


@dataclass(frozen=True)
class ProbeResult:
    service: str
    status: FleetStatus
    http_status: int | None
    response_time_ms: float | None
    error: str | None


async def _get(client: httpx.AsyncClient, url: str, seconds: float) -> tuple[int, bytes]:
    async with asyncio.timeout(seconds), client.stream("GET", url, timeout=seconds) as response:
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _MAX_BODY:
                break
        return response.status_code, body[:_MAX_BODY]


def _not_ready_reason(body: bytes) -> str:
    """/ready's failing checks ("database: migrations not at head ..."), else a generic line."""
    try:
        checks = json.loads(body).get("checks", {})
        failing = [f"{name}: {result}" for name, result in checks.items() if result != "ok"]
    except (ValueError, AttributeError):
        failing = []
    return ("; ".join(failing) or "not ready")[:500]


async def probe(
    client: httpx.AsyncClient, service: str, base_url: str, seconds: float
) -> ProbeResult:
    """One service's status; never raises (a failure is the result)."""
    started = time.perf_counter()
    try:
        status, _ = await _get(client, f"{base_url}/health", seconds)
    except (TimeoutError, httpx.TimeoutException):
        return ProbeResult(service, FleetStatus.DOWN, None, None, f"no answer within {seconds:g} s")
    except httpx.HTTPError as exc:
        reason = f"unreachable: {type(exc).__name__}"
        return ProbeResult(service, FleetStatus.DOWN, None, None, reason)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    if status != 200:
        reason = f"/health answered {status}"
        return ProbeResult(service, FleetStatus.DOWN, status, elapsed, reason)
    try:
        ready_status, body = await _get(client, f"{base_url}/ready", seconds)
    except (TimeoutError, httpx.HTTPError) as exc:
        reason = f"/ready failed: {type(exc).__name__}"
        return ProbeResult(service, FleetStatus.DEGRADED, None, elapsed, reason)
    if ready_status != 200:
        reason = _not_ready_reason(body)
        return ProbeResult(service, FleetStatus.DEGRADED, ready_status, elapsed, reason)
    return ProbeResult(service, FleetStatus.UP, 200, elapsed, None)


async def probe_all(
    client: httpx.AsyncClient, urls: dict[str, str], seconds: float
) -> list[ProbeResult]:
    """Every service at once: a round lasts about one timeout, however many are down."""
    return list(
        await asyncio.gather(*(probe(client, name, url, seconds) for name, url in urls.items()))
    )
