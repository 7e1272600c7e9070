"""Who may read the gateway's ``/metrics``: the monitoring network, never the public.

The gateway is the one service the internet reaches, and its metrics name routes, upstreams,
failure counts and rate-limit decisions. ``/metrics`` therefore answers only

* a **service token** addressed to the gateway (``aud=api-gateway``, ``typ=service``), which is
  how the monitoring service scrapes every service (client credentials at user-service); or
* a direct peer inside ``METRICS_ALLOWED_NETWORKS`` (CIDRs; empty by default), for a Prometheus
  on the monitoring network that carries no token. The peer is the TCP peer, never an
  ``X-Forwarded-For`` claim, so the allowlist must name networks the public cannot come from.

Everything else gets a 401 problem, and nothing of the metrics.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api_gateway.identity import bearer_token
from fedimpute_shared.auth import TokenError, TokenVerifier
from fedimpute_shared.client_address import IPNetwork, parse_address
from fedimpute_shared.observability import metrics_endpoint
from fedimpute_shared.problems import Unauthorized

METRICS_PATH = "/metrics"


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allowlist's networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"METRICS_ALLOWED_NETWORKS: {entry!r} is not an IP address or CIDR"
            ) from None
    return tuple(networks)


class MetricsGuard:
    """The ``/metrics`` endpoint behind the service-token / network check."""

    def __init__(self, allowed_networks: Iterable[str]) -> None:
        self._networks = parse_networks(allowed_networks)

    def _from_allowed_network(self, request: Request) -> bool:
        peer = parse_address(request.client.host) if request.client else None
        return peer is not None and any(peer in network for network in self._networks)

    async def serve(self, request: Request) -> Response:
        if not self._from_allowed_network(request):
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                raise Unauthorized("/metrics needs a service token for api-gateway")
            verifier: TokenVerifier = request.state.token_verifier
            try:
                await verifier.verify_service(token)
            except TokenError:
                raise Unauthorized("/metrics needs a service token for api-gateway") from None
        return await metrics_endpoint(request)


def guard_metrics(app: FastAPI, allowed_networks: Iterable[str]) -> None:
    """Replace the shared app's public ``/metrics`` route with the guarded one."""
    guarded = Route(METRICS_PATH, MetricsGuard(allowed_networks).serve, include_in_schema=False)
    routes = app.router.routes
    for index, route in enumerate(routes):
        if isinstance(route, Route) and route.path == METRICS_PATH:
            routes[index] = guarded
            return
    raise RuntimeError("the shared app has no /metrics route to guard")
