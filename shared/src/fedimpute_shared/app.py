"""The one way a FedImpute service app is built, so every service behaves alike.

:func:`create_service_app` wires what DESIGN.md §3 fixes for all services: problem+json errors,
request ids, access logs and metrics (one pure-ASGI middleware), ``/health``, ``/ready``,
``/metrics``, ``/docs``; and a lifespan that opens the database engine, the HTTP client and the
token verifier, then hands over to the service's own lifespan (workers, caches...).

Lifespan resources are yielded as Starlette *lifespan state*: handlers read them from
``request.state`` (``request.state.sessionmaker`` ...), nothing is global.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fedimpute_shared.auth import JWKSCache, TokenVerifier
from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.db import create_engine, create_sessionmaker
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
from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.problems import Problem, install_problem_handlers

logger = logging.getLogger(__name__)


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
    metrics: Metrics

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
        }


ServiceLifespan = Callable[[FastAPI, CoreResources], AbstractAsyncContextManager[dict[str, Any]]]
"""A service's own lifespan: starts its workers and yields extra state entries."""


@asynccontextmanager
async def open_core_resources(
    settings: ServiceSettings, metrics: Metrics, *, uses_redis: bool
) -> AsyncIterator[CoreResources]:
    """Open (and finally close) the engine, HTTP client, token verifier and Redis."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    http = create_http_client()
    redis = Redis.from_url(settings.redis_url) if uses_redis and settings.redis_url else None
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
        )
    finally:
        await http.aclose()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


def _freeze_startup_heap() -> None:
    """Move everything built at start-up (modules, models, routes) out of the garbage
    collector's reach: full collections then walk only what requests allocate, instead of
    pausing the event loop for tens of milliseconds over a heap that never becomes garbage."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _no_extension(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
    yield {}


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    migrations_dir: Path | None = None,
    service_lifespan: ServiceLifespan = _no_extension,
    uses_redis: bool = False,
    openapi_tags: list[dict[str, Any]] | None = None,
    openapi_url: str = "/openapi.json",
) -> FastAPI:
    """Build a service app with the platform's common behaviour.

    ``migrations_dir=None`` builds a service without a database (the api-gateway): ``/ready``
    then checks only Redis. The engine in :class:`CoreResources` still exists (SQLAlchemy
    engines connect lazily) but nothing uses it, so no connection is ever opened.
    ``openapi_url`` moves the app's own spec (and what ``/docs`` shows).
    """
    configure_logging(settings.service_name, settings.log_level, json_lines=settings.log_json)
    metrics = Metrics()
    heads = alembic_heads(migrations_dir) if migrations_dir is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_core_resources(settings, metrics, uses_redis=uses_redis) as core:
            checks: dict[str, ReadinessCheck] = {}
            if heads is not None:
                checks["database"] = database_check(core.engine, heads)
            if core.redis is not None:
                checks["redis"] = redis_check(core.redis)
            app.state.readiness_checks = checks
            async with service_lifespan(app, core) as extra_state:
                _freeze_startup_heap()
                logger.info(
                    "%s started", settings.service_name, extra={"settings": settings.public_dict()}
                )
                yield core.state() | extra_state
            logger.info("%s stopping", settings.service_name)

    app = FastAPI(
        title=title,
        description=description,
        version=settings.service_version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        openapi_url=openapi_url,
        responses={422: {"model": Problem, "description": "Request validation failed"}},
    )
    app.state.metrics = metrics
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.include_router(health_router(settings.service_name, settings.service_version))
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    return app


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
