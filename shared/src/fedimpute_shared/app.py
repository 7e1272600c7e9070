"""The one way a FedImpute service app is built, so every service behaves alike.

:func:`create_service_app` wires what DESIGN.md §3 fixes for all services: problem+json errors,
request ids, access logs and metrics (one pure-ASGI middleware), the request-body limit,
``/health``, ``/ready``, ``/metrics``, ``/docs``; and a lifespan that opens the database engine,
the HTTP client, the token verifier and Redis, hands over to the service's own lifespan (which
registers its background work on ``core.tasks``), then starts that background work and, for a
service with an outbox, the outbox relay.

Lifespan resources are yielded as Starlette *lifespan state*: handlers read them from
``request.state`` (``request.state.sessionmaker`` ...) through ``from_state`` dependencies;
nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware import Middleware

from fedimpute_shared.auth import JWKSCache, TokenVerifier
from fedimpute_shared.body_limit import BodySizeLimit
from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.db import create_engine, create_sessionmaker
from fedimpute_shared.docs import install_docs
from fedimpute_shared.events import OutboxEvent
from fedimpute_shared.health import (
    ReadinessCheck,
    database_check,
    health_router,
    redis_check,
)
from fedimpute_shared.http import create_http_client
from fedimpute_shared.logs import configure_logging
from fedimpute_shared.migrations import alembic_heads
from fedimpute_shared.observability import Metrics, ObservabilityMiddleware, metrics_endpoint
from fedimpute_shared.outbox import RELAY_TASK, OutboxRelay, RelayMetrics, RelayOptions
from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.problems import document_problems, install_problem_handlers
from fedimpute_shared.revocation import RevokedUsers
from fedimpute_shared.tasks import BackgroundTasks, TaskMetrics, cancel_and_wait

__all__ = [
    "CoreResources",
    "MetricsFactory",
    "ServiceLifespan",
    "create_service_app",
    "serve",
    "service_cli",
]

logger = logging.getLogger(__name__)

MetricsFactory = Callable[[CollectorRegistry], Any]
"""Builds a service's own metrics in the app's registry (usually the metrics class itself)."""


@dataclass
class CoreResources:
    """What every service opens at start-up; passed to the service's own lifespan."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    token_verifier: TokenVerifier
    cursor_codec: CursorCodec
    redis: Redis | None
    metrics: Metrics  # the request metrics and the app's registry
    service_metrics: Any  # what the service's MetricsFactory built (None without one)
    tasks: BackgroundTasks  # register background work here; the factory starts and stops it

    def state(self) -> dict[str, Any]:
        """The lifespan state handlers see as ``request.state.<name>``."""
        return {
            "settings": self.settings,
            "engine": self.engine,
            "sessionmaker": self.sessionmaker,
            "http": self.http,
            "token_verifier": self.token_verifier,
            "cursor_codec": self.cursor_codec,
            "redis": self.redis,
            "metrics": self.service_metrics,
            "tasks": self.tasks,
        }


ServiceLifespan = Callable[[FastAPI, CoreResources], AbstractAsyncContextManager[dict[str, Any]]]
"""A service's own lifespan: starts its workers and yields extra state entries."""


@asynccontextmanager
async def open_core_resources(
    settings: ServiceSettings,
    metrics: Metrics,
    service_metrics: Any,
    task_metrics: TaskMetrics,
    *,
    uses_redis: bool,
) -> AsyncIterator[CoreResources]:
    """Open (and finally close) the engine, HTTP client, token verifier and Redis."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    http = create_http_client()
    redis = Redis.from_url(settings.redis_url) if uses_redis and settings.redis_url else None
    tasks = BackgroundTasks(engine=engine, metrics=task_metrics)
    jwks = JWKSCache(settings.jwks_url, http, ttl_seconds=settings.jwks_cache_seconds)
    verifier = TokenVerifier(
        jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        service_name=settings.service_name,
    )
    try:
        yield CoreResources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            http=http,
            token_verifier=verifier,
            cursor_codec=CursorCodec(settings.cursor_secret.get_secret_value()),
            redis=redis,
            metrics=metrics,
            service_metrics=service_metrics,
            tasks=tasks,
        )
    finally:
        await tasks.stop()
        await http.aclose()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


@asynccontextmanager
async def _revoked_users(settings: ServiceSettings) -> AsyncIterator[RevokedUsers | None]:
    """Follow user-service's announcements of users whose access was cut (every replica, on
    its own Redis connection), so their tokens are refused within a second; None without
    Redis (development only: elsewhere the settings refuse to start without it)."""
    if not settings.redis_url:
        yield None
        return
    revoked = RevokedUsers()
    client = Redis.from_url(settings.redis_url)
    listener = asyncio.create_task(revoked.listen(client), name="revoked-users")
    try:
        yield revoked
    finally:
        await cancel_and_wait({listener}, within=2)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(client.aclose(), timeout=1)


def _freeze_startup_heap() -> None:
    """Move everything built at start-up (modules, models, routes) out of the garbage
    collector's reach: full collections then walk only what requests allocate, instead of
    pausing the event loop for tens of milliseconds over a heap that never becomes garbage."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _no_extension(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
    yield {}


def _add_outbox_relay(
    core: CoreResources, outbox: type[OutboxEvent], metrics: RelayMetrics
) -> OutboxRelay | None:
    """Register the outbox relay on ``core.tasks`` (when enabled and Redis is configured)."""
    settings = core.settings
    if not settings.outbox_relay_enabled:
        return None
    if core.redis is None:
        logger.warning("REDIS_URL is not set: outbox events are kept but not published")
        return None
    relay = OutboxRelay(
        core.sessionmaker,
        core.redis,
        outbox,
        RelayOptions(
            stream=settings.event_stream,
            max_length=settings.event_stream_max_length,
            batch_size=settings.outbox_relay_batch_size,
            retention=timedelta(hours=settings.outbox_retention_hours),
        ),
        metrics=metrics,
    )
    core.tasks.every(
        RELAY_TASK,
        relay.relay_once,
        interval=settings.outbox_relay_interval_seconds,
        single=True,
    )
    return relay


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    migrations_dir: Path | None = None,
    service_lifespan: ServiceLifespan = _no_extension,
    uses_redis: bool = False,
    metrics: MetricsFactory | None = None,
    outbox: type[OutboxEvent] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    openapi_url: str = "/openapi.json",
) -> FastAPI:
    """Build a service app with the platform's common behaviour.

    - ``migrations_dir``: the service's Alembic folder (``/ready`` checks the database is at
      its head). ``None`` builds a service without a database (the api-gateway): ``/ready``
      then checks only Redis; the engine in :class:`CoreResources` exists but never connects.
    - ``service_lifespan``: the service's own start-up and shut-down; it registers background
      work on ``core.tasks`` and yields extra lifespan state entries.
    - ``uses_redis``: the service needs Redis to serve (``/ready`` checks it).
    - ``metrics``: builds the service's own metrics once, in the app's registry; they are the
      lifespan state entry ``metrics`` and ``core.service_metrics``.
    - ``outbox``: the service's outbox model; its rows are published to the event stream by
      the outbox relay (a background task; Redis is opened for it when ``REDIS_URL`` is set).
    - ``openapi_url`` moves the app's own spec (and what ``/docs`` shows).

    Every request body is limited to ``settings.max_body_bytes`` except on routes marked with
    :func:`fedimpute_shared.body_limit.streams_body`.
    """
    configure_logging(settings.service_name, settings.log_level, json_lines=settings.log_json)
    app_metrics = Metrics()
    service_metrics = metrics(app_metrics.registry) if metrics is not None else None
    task_metrics = TaskMetrics(app_metrics.registry)
    relay_metrics = RelayMetrics(app_metrics.registry) if outbox is not None else None
    heads = alembic_heads(migrations_dir) if migrations_dir is not None else None
    relay_redis = outbox is not None and settings.outbox_relay_enabled

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_core_resources(
            settings,
            app_metrics,
            service_metrics,
            task_metrics,
            uses_redis=uses_redis or relay_redis,
        ) as core:
            checks: dict[str, ReadinessCheck] = {}
            if heads is not None:
                checks["database"] = database_check(core.engine, heads)
            if uses_redis and core.redis is not None:
                checks["redis"] = redis_check(core.redis)
            app.state.readiness_checks = checks
            app.state.outbox_relay = (
                _add_outbox_relay(core, outbox, relay_metrics)
                if outbox is not None and relay_metrics is not None
                else None
            )
            async with (
                _revoked_users(settings) as revoked_users,
                service_lifespan(app, core) as extra_state,
            ):
                extra_state = {"revoked_users": revoked_users, **extra_state}
                await core.tasks.start()
                try:
                    _freeze_startup_heap()
                    logger.info(
                        "%s started",
                        settings.service_name,
                        extra={"settings": settings.public_dict()},
                    )
                    yield core.state() | extra_state
                finally:
                    await core.tasks.stop()
            logger.info("%s stopping", settings.service_name)

    app = FastAPI(
        title=title,
        description=description,
        version=settings.service_version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        openapi_url=openapi_url,
        docs_url=None,  # install_docs serves /docs with assets from the installed packages
        redoc_url=None,
    )
    app.state.metrics = app_metrics
    app.state.service_metrics = service_metrics
    app.state.settings = settings
    install_problem_handlers(app)
    _document_problems_once(app)
    app.add_middleware(ObservabilityMiddleware, metrics=app_metrics)
    # Innermost (appended, not add_middleware's insert-at-front), so a 413 still gets the
    # request id, the access log line and the metrics of the observability middleware.
    app.user_middleware.append(
        Middleware(
            BodySizeLimit,
            max_bytes=settings.max_body_bytes,
            # The app's own routes (the gateway's proxy) and the routers' routes (FastAPI keeps
            # an included router whole, behind one entry of app.router.routes).
            routes=lambda: [*app.router.routes, *(r for router in routers for r in router.routes)],
        )
    )
    app.include_router(health_router(settings.service_name, settings.service_version))
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    install_docs(app, title)
    for router in routers:
        app.include_router(router)
    return app


def _document_problems_once(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare every problem response of every operation (once, when the
    document is first built): see :func:`fedimpute_shared.problems.document_problems`. An app
    that replaces ``app.openapi`` afterwards (the gateway's merged document) documents its own."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run ``app`` with uvicorn on ``settings.host:port``."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # create_service_app configured JSON logging already
        proxy_headers=False,  # only the gateway decides what a client address is
        server_header=False,
    )


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def service_cli(
    settings_factory: Callable[[], SettingsT],
    app_factory: Callable[[SettingsT], FastAPI],
    migrations_dir: Path | None,
    extra_commands: dict[str, Callable[[SettingsT, list[str]], int]] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """``python -m <service> [serve|migrate|<extra>]``: the one entry point of every service.

    ``serve`` (the default) runs the API; ``migrate`` applies the service's migrations to
    ``DATABASE_URL`` (a no-op for a service without a database, ``migrations_dir=None``);
    services add their own commands (user-service's ``create-admin``).
    """
    import sys

    from fedimpute_shared.migrations import upgrade_to_head

    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "serve"
    settings = settings_factory()
    if command == "serve":
        serve(app_factory(settings), settings)
        return 0
    if command == "migrate":
        if migrations_dir is None:
            print(f"{settings.service_name} has no database: nothing to migrate", file=sys.stderr)
            return 0
        upgrade_to_head(migrations_dir, settings.database_url)
        return 0
    if extra_commands and command in extra_commands:
        return extra_commands[command](settings, args)
    known = ["serve", "migrate", *(extra_commands or {})]
    print(f"unknown command {command!r}; use one of: {', '.join(known)}", file=sys.stderr)
    return 2
