"""``GET /health`` (liveness) and ``GET /ready`` (readiness) for every service.

Liveness says only that the process answers. Readiness checks what the service needs to do its
work: the database reachable with migrations at head, and Redis reachable where it is used; it
answers 503 otherwise, so an orchestrator stops routing to a replica that cannot serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from fedimpute_shared.migrations import database_revisions

__all__ = [
    "CHECK_TIMEOUT_SECONDS",
    "ReadinessCheck",
    "database_check",
    "health_router",
    "redis_check",
]

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when fine, else a short reason; must not raise."""

CHECK_TIMEOUT_SECONDS = 3.0


def database_check(engine: AsyncEngine, heads: set[str]) -> ReadinessCheck:
    async def check() -> str | None:
        try:
            async with engine.connect() as conn:
                current = await database_revisions(conn)
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            return f"database unavailable: {type(exc).__name__}"
        if current != heads:
            return f"migrations not at head (at {sorted(current)}, head {sorted(heads)})"
        return None

    return check


def redis_check(redis: Redis) -> ReadinessCheck:
    async def check() -> str | None:
        try:
            await redis.ping()
        except Exception as exc:
            return f"redis unavailable: {type(exc).__name__}"
        return None

    return check


def health_router(service: str, version: str) -> APIRouter:
    """The two probes; readiness checks come from ``app.state.readiness_checks``."""
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "healthy", "service": service, "version": version}

    @router.get("/ready", summary="Readiness", responses={503: {"description": "Not ready"}})
    async def ready(request: Request) -> JSONResponse:
        checks: dict[str, ReadinessCheck] = getattr(request.app.state, "readiness_checks", {})
        results = await asyncio.gather(*(_bounded(c) for c in checks.values()))
        failures = {name: reason for name, reason in zip(checks, results, strict=True) if reason}
        body = {
            "status": "not_ready" if failures else "ready",
            "service": service,
            "checks": {name: failures.get(name, "ok") for name in checks},
        }
        return JSONResponse(body, status_code=503 if failures else 200)

    return router


async def _bounded(check: ReadinessCheck) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "check timed out"
