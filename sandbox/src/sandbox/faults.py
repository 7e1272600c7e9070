"""Fault knobs shared by every simulator, and the admin endpoint that turns them at run time.

Each running simulator owns one `FaultState`. It is set at start (CLI flags or fixture options)
and changed with `PUT /_sandbox/faults` (a partial JSON object merges into the current knobs),
read with `GET /_sandbox/faults`, and reset to normal with `DELETE /_sandbox/faults`. The
`/_sandbox/` routes are never subject to faults, and they are also served on the admin port,
which stays open during a "refuse" outage (the public port is then really closed).

Request-level knobs act in `FaultMiddleware`; the job knobs (`stuck_jobs`, `fail_at_step`,
`fail_mode`) are read by the job engines when a job reaches the step, and `expired_tokens` by the
simulators' token checks.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ADMIN_PREFIX", "FaultMiddleware", "FaultState", "FaultStep", "Faults", "admin_router"]

ADMIN_PREFIX = "/_sandbox"

FaultStep = Literal["validation", "qc", "imputation", "export"]

_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Faults(BaseModel):
    """Every knob at its normal value; a `Faults()` is a healthy server."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(
        0, ge=0, description="added delay per request; the minimum if latency_max_ms is set"
    )
    latency_max_ms: float | None = Field(None, ge=0, description="random delay up to this many ms")
    error_rate: float = Field(
        0, ge=0, le=1, description="share of requests answered with an error status"
    )
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503], min_length=1)
    outage: Literal["none", "refuse", "hang"] = Field(
        "none", description="refuse: the port is closed; hang: requests never get an answer"
    )
    outage_seconds: float | None = Field(
        None, gt=0, description="end the outage by itself after this long"
    )
    malformed_json: bool = Field(False, description="JSON bodies are cut short")
    expired_tokens: bool = Field(False, description="every token is treated as expired")
    stuck_jobs: bool = Field(False, description="jobs reaching the imputation step stay there")
    fail_at_step: FaultStep | None = Field(None, description="jobs fail when they reach this step")
    run_detour: Literal["PAUSED", "UNKNOWN", "PREEMPTED"] | None = Field(
        None,
        description="WES runs reaching RUNNING report this state: PAUSED and UNKNOWN for a task's "
        "time, then go on; PREEMPTED ends the run (WES 1.1 flavours only)",
    )
    fail_mode: Literal["error", "dead"] = Field(
        "error",
        description="error: Cloudgene 5 / WES EXECUTOR_ERROR; dead: Cloudgene -1 / WES SYSTEM_ERROR",
    )


class FaultState:
    """The current knobs of one server, with change notification for the listener supervisor."""

    def __init__(self, initial: Faults | None = None, seed: int | None = None) -> None:
        self.current = initial or Faults()
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self._appliers: list[Callable[[Faults], Awaitable[None]]] = []
        self._not_hanging = asyncio.Event()
        self._sync_hang_event()

    def add_applier(self, applier: Callable[[Faults], Awaitable[None]]) -> None:
        """Register work that must follow a change (the server opening or closing its port)."""
        self._appliers.append(applier)

    async def apply(self) -> None:
        """Run the appliers for the current knobs; the admin calls return only after this."""
        for applier in self._appliers:
            await applier(self.current)

    def set(self, faults: Faults) -> None:
        self.current = faults
        self._sync_hang_event()

    def update(self, changes: dict[str, Any]) -> Faults:
        """Merge `changes` into the current knobs (validated) and apply them."""
        merged = Faults.model_validate({**self.current.model_dump(), **changes})
        self.set(merged)
        return merged

    def reset(self) -> None:
        self.set(Faults())

    def _sync_hang_event(self) -> None:
        if self.current.outage == "hang":
            self._not_hanging.clear()
        else:
            self._not_hanging.set()

    async def wait_while_hanging(self) -> None:
        await self._not_hanging.wait()

    def latency_seconds(self) -> float:
        low, high = self.current.latency_ms, self.current.latency_max_ms
        delay = self._random.uniform(low, high) if high is not None and high > low else low
        return delay / 1000

    def error_status(self) -> int | None:
        rate = self.current.error_rate
        if rate and self._random.random() < rate:
            return self._random.choice(self.current.error_statuses)
        return None


def _is_json(message: Message) -> bool:
    headers = dict(message.get("headers", []))
    return b"json" in headers.get(b"content-type", b"")


class FaultMiddleware:
    """Pure ASGI middleware applying the request-level knobs to everything but `/_sandbox/`."""

    def __init__(self, app: ASGIApp, faults: FaultState) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        await self.faults.wait_while_hanging()
        delay = self.faults.latency_seconds()
        if delay:
            await asyncio.sleep(delay)
        status = self.faults.error_status()
        if status is not None:
            await self._error_page(status, send)
            return
        if self.faults.current.malformed_json:
            await self.app(scope, receive, self._truncating(send))
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _error_page(status: int, send: Send) -> None:
        """The HTML page a reverse proxy shows when the application behind it fails."""
        title = f"{status} {_REASONS.get(status, 'Error')}"
        body = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        ).encode()
        headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _truncating(send: Send) -> Send:
        """Wrap `send` so a JSON body is buffered, cut in half and sent with a matching length."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_json(message):
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            body = body[: max(1, len(body) // 2)] if body else body
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return wrapped


def admin_router(faults: FaultState) -> APIRouter:
    """`GET/PUT/DELETE /_sandbox/faults`; PUT merges a partial object into the current knobs."""
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    @router.get("/faults")
    async def get_faults() -> Faults:
        return faults.current

    @router.put("/faults", response_model=Faults)
    async def put_faults(changes: dict[str, Any]) -> Faults | JSONResponse:
        try:
            faults.update(changes)
        except ValidationError as exc:
            return JSONResponse(
                {"detail": json.loads(exc.json(include_url=False))}, status_code=422
            )
        await faults.apply()
        return faults.current

    @router.delete("/faults")
    async def reset_faults() -> Faults:
        faults.reset()
        await faults.apply()
        return faults.current

    return router
