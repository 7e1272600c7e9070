"""The gateway's own Prometheus counters, registered in the app's registry beside the shared
request metrics (so ``/metrics`` shows both)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.proxied = Counter(
            "gateway_proxy_requests_total",
            "Requests proxied to a service, by service and upstream status.",
            ["service", "status"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed upstream calls by service and kind "
            "(connect, timeout, protocol, no_healthy_upstream).",
            ["service", "kind"],
            registry=registry,
        )
        self.upstream_marked_down = Counter(
            "gateway_upstream_marked_down_total",
            "Times a replica was taken out of rotation for a cool-down.",
            ["service"],
            registry=registry,
        )
        self.rate_limit = Counter(
            "gateway_rate_limit_decisions_total",
            "Rate-limit decisions by class and outcome (allowed, limited).",
            ["limit_class", "outcome"],
            registry=registry,
        )
        self.rate_limit_unavailable = Counter(
            "gateway_rate_limit_unavailable_total",
            "Requests decided without Redis (allowed when failing open, refused otherwise).",
            registry=registry,
        )
        self.auth_failures = Counter(
            "gateway_auth_failures_total",
            "Requests refused at the edge for their credentials, by kind.",
            ["kind"],
            registry=registry,
        )
        self.api_token_exchanges = Counter(
            "gateway_api_token_exchanges_total",
            "API-token exchanges at user-service by outcome (ok, refused, error).",
            ["outcome"],
            registry=registry,
        )
        self.websockets = Gauge(
            "gateway_websocket_sessions",
            "WebSocket sessions currently proxied.",
            registry=registry,
        )
