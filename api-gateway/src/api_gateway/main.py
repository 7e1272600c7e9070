"""The api-gateway app: its own few routes, the catch-all proxy, CORS, and the lifespan that
opens the upstream pools, the rate limiter and the background tasks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from api_gateway import front
from api_gateway.api_tokens import ApiTokenExchanger, RevocationListener
from api_gateway.config import Settings
from api_gateway.dispatch import proxy_first
from api_gateway.gateway import Gateway
from api_gateway.identity import EdgeAuthenticator
from api_gateway.metrics import GatewayMetrics
from api_gateway.metrics_access import guard_metrics
from api_gateway.openapi import OpenAPICache
from api_gateway.proxy import proxy_http
from api_gateway.ratelimit import RateLimiter, parse_rate
from api_gateway.redis_pipe import RedisPipe
from api_gateway.routes import LimitClass, RouteTable
from api_gateway.upstream_http import UpstreamConnections
from api_gateway.upstreams import UpstreamTransport, build_pools
from api_gateway.websocket import proxy_websocket
from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from fedimpute_shared.body_limit import streams_body
from fedimpute_shared.client_address import TrustedProxies
from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from fedimpute_shared.transport import PooledTransport

logger = logging.getLogger(__name__)

# Idle upstream connections are dropped before the services' uvicorn closes them (its
# keep-alive timeout is 5 s), so a request is never sent on a socket the server is closing.
UPSTREAM_KEEPALIVE_SECONDS = 4.0

DESCRIPTION = """
The public API of FedImpute, the Federated Genomic Imputation Platform: accounts and tokens,
external imputation services and reference panels, jobs, files, notifications and monitoring.

Authenticate with `Authorization: Bearer <token>`, where the token is an access token from
`POST /api/auth/login` or a personal API token (`fgi_...`). Responses carry `RateLimit` and
`RateLimit-Policy` headers; errors are RFC 9457 `application/problem+json`.
"""

CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-Request-ID",
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Concat",
    "X-HTTP-Method-Override",
    # file-manager's raw uploads (curl --data-binary / -T): the name and expected checksums
    "X-File-Name",
    "X-Checksum-Sha256",
    "X-Checksum-Md5",
    "Content-MD5",
    "Content-Disposition",
]
CORS_EXPOSE_HEADERS = [
    "Location",
    "X-Request-ID",
    "ETag",
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Defer-Length",
    "Upload-Concat",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
]
CORS_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ProxyEndpoint:
    """The ASGI app behind the catch-all HTTP and WebSocket routes.

    It streams bodies through and enforces its own per-route limits (``MAX_JSON_BODY_BYTES``
    for API calls, none for uploads), so the app factory's body limit does not apply to it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway = scope["state"]["gateway"]
        if scope["type"] == "websocket":
            await proxy_websocket(gateway, scope, receive, send)
        else:
            await proxy_http(gateway, scope, receive, send)


def _rate_limiter(
    settings: Settings, metrics: GatewayMetrics
) -> tuple[RateLimiter, RedisPipe] | None:
    if not settings.rate_limit_enabled:
        return None
    if not settings.redis_url:
        logger.warning("REDIS_URL is not set: rate limiting is off")
        return None
    redis = RedisPipe(settings.redis_url, timeout=settings.rate_limit_redis_timeout_seconds)
    rates = {
        LimitClass.LOGIN: parse_rate(settings.rate_limit_login, LimitClass.LOGIN),
        LimitClass.UPLOAD: parse_rate(settings.rate_limit_upload, LimitClass.UPLOAD),
        LimitClass.DEFAULT: parse_rate(settings.rate_limit_default, LimitClass.DEFAULT),
    }
    limiter = RateLimiter(
        redis,
        {str(k): v for k, v in rates.items()},
        metrics,
        fail_open=settings.rate_limit_fail_open,
        retry_after_error_seconds=settings.rate_limit_redis_retry_seconds,
    )
    return limiter, redis


def _lifespan(settings: Settings, openapi: OpenAPICache) -> ServiceLifespan:
    """Opens the upstream pools and clients, the rate limiter and the background tasks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        metrics: GatewayMetrics = core.service_metrics
        pools = build_pools(
            settings.upstream_urls(),
            max_failures=settings.upstream_max_failures,
            cooldown=settings.upstream_cooldown_seconds,
            metrics=metrics,
        )
        # Proxied requests: the lean client of upstream_http.py.
        connections = UpstreamConnections(
            limit=settings.max_upstream_connections, keepalive=UPSTREAM_KEEPALIVE_SECONDS
        )
        # The gateway's own calls (service tokens, API-token exchange, OpenAPI documents): httpx.
        inner = PooledTransport(
            max_connections_per_origin=settings.max_upstream_connections,
            keepalive_expiry=UPSTREAM_KEEPALIVE_SECONDS,
        )
        transport = UpstreamTransport(pools, inner, metrics)
        client = create_http_client(
            transport=transport,
            timeout=httpx.Timeout(
                settings.proxy_timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        provider = ServiceTokenProvider(
            "http://user-service", settings.service_name, settings.service_client_secret, client
        )
        exchanger = ApiTokenExchanger(
            client,
            ServiceTokenAuth(provider, "user-service"),
            metrics,
            renew_margin=settings.api_token_renew_margin_seconds,
            max_entries=settings.api_token_cache_size,
        )
        limiting = _rate_limiter(settings, metrics)
        gateway = Gateway(
            settings=settings,
            routes=RouteTable.from_settings(settings),
            connections=connections,
            pools=pools,
            authenticator=EdgeAuthenticator(
                core.token_verifier,
                exchanger,
                metrics,
                cache_size=settings.verified_token_cache_size,
            ),
            limiter=limiting[0] if limiting else None,
            trusted=TrustedProxies(settings.trusted_proxies),
            metrics=metrics,
        )
        core.tasks.run(
            "openapi-refresh",
            lambda: openapi.run(
                client,
                pools,
                refresh_seconds=settings.openapi_refresh_seconds,
                retry_seconds=settings.openapi_retry_seconds,
            ),
        )
        revocations = RevocationListener(core.redis, exchanger) if core.redis else None
        if revocations is not None:
            # redis-py may swallow a cancellation mid-read: the listener also ends on a flag.
            core.tasks.run("api-token-revocations", revocations.run, on_stop=revocations.stop)
        app.state.gateway = gateway
        app.state.revocations = revocations
        try:
            yield {"gateway": gateway}
        finally:
            connections.close()
            await client.aclose()
            if limiting:
                await limiting[1].aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    openapi = OpenAPICache(
        title="FedImpute API", version=settings.service_version, description=DESCRIPTION
    )
    app = create_service_app(
        settings,
        title="FedImpute api-gateway",
        description=DESCRIPTION,
        routers=[front.router],
        service_lifespan=_lifespan(settings, openapi),
        uses_redis=True,
        metrics=GatewayMetrics,
        openapi_url="/api/openapi.json",
    )
    # /api/openapi.json serves the merged public document, not the gateway's own few routes.
    app.openapi = openapi.document  # type: ignore[method-assign]
    app.state.openapi = openapi
    # /metrics only for service tokens and the monitoring network (api_gateway.metrics_access)
    guard_metrics(app, settings.metrics_allowed_networks)
    # Last in the routing table: everything the gateway does not answer itself is proxied (or
    # refused) after normalisation, whatever shape the raw path has.
    proxy = streams_body(ProxyEndpoint())
    app.router.routes.extend(
        [
            Route("/{path:path}", endpoint=proxy, include_in_schema=False),
            WebSocketRoute("/{path:path}", endpoint=proxy),
        ]
    )
    cors = cors_options(settings)
    app.add_middleware(CORSMiddleware, **cors)
    # Proxied /api/... requests skip FastAPI's stack (same CORS, logs, metrics and problems).
    proxy_first(app, proxy, cors)
    return app


def cors_options(settings: Settings) -> dict[str, Any]:
    """The one CORS policy, for the app's middleware and the proxied requests' short stack."""
    return {
        "allow_origins": settings.cors_origins,
        "allow_credentials": True,
        "allow_methods": CORS_METHODS,
        "allow_headers": CORS_ALLOW_HEADERS,
        "expose_headers": CORS_EXPOSE_HEADERS,
        "max_age": settings.cors_max_age_seconds,
    }
