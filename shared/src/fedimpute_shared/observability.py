"""One pure-ASGI middleware for request ids, access logs and Prometheus request metrics.

Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on every request's hot path and must not
buffer streamed bodies. Metrics live in a per-app :class:`prometheus_client.CollectorRegistry` so
several apps can run in one process (tests) without colliding; each service adds its own domain
counters to ``app.state.metrics.registry``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedimpute_shared.context import REQUEST_ID_HEADER, accept_request_id, request_id_var
from fedimpute_shared.logs import DOWNLOAD_LINK_TOKEN

__all__ = [
    "Metrics",
    "ObservabilityMiddleware",
    "metrics_endpoint",
]

access_logger = logging.getLogger("fedimpute.access")

# Latency buckets sized for API calls: 1 ms .. 30 s.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Routes whose traffic would drown the access log; they are still counted.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


@dataclass
class Metrics:
    """The request metrics of one app, in that app's own registry."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    """The matched route template (``/services/{service_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Assigns ``X-Request-ID``, times the request, counts it and writes one access log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = accept_request_id(incoming)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == 500:
                status = 403  # closed before accepting: the server answers the upgrade with 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        method = scope.get("method", "WS")
        route = _route_label(scope)
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(elapsed)
        if scope.get("path") in _QUIET_PATHS:
            return
        access_logger.info(
            "%s %s %s %.1fms",
            method,
            loggable_path(scope.get("path", "")),
            status,
            elapsed * 1000,
            extra={"status": status, "duration_ms": round(elapsed * 1000, 2), "route": route},
        )


def loggable_path(path: str) -> str:
    """The path as the access log shows it: a signed download link's token (a credential valid
    for days) is masked at the source, before any handler or test capture sees the record."""
    return DOWNLOAD_LINK_TOKEN.sub(r"\1[REDACTED]", path)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics`` in the Prometheus text format."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
