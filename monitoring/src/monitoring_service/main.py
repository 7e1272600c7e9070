"""The monitoring app: routes, and in the lifespan the fleet poller, the metrics scraper, the
registry sync, the event consumer and the alert evaluator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from monitoring_service.config import Settings
from monitoring_service.fleet.router import router as fleet_router
from monitoring_service.fleet.service import FleetPoller
from monitoring_service.metrics import MonitoringMetrics
from monitoring_service.models import OutboxEvent

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
The platform watched all the time: every service's health and readiness, the external
imputation services' health (from the registry), key metrics of every service and of the host,
alerts raised and resolved by configured rules, the dashboard, and a public status page.
"""

TAGS = [
    {"name": "fleet", "description": "The platform's own services: health, readiness, uptime."},
]


def _lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        metrics: MonitoringMetrics = core.service_metrics
        poller = FleetPoller(core.sessionmaker, core.http, settings, metrics)
        if settings.workers_enabled:
            core.tasks.every(
                "fleet-poll", poller.poll_once, interval=settings.fleet_poll_seconds, single=True
            )
            core.tasks.every("fleet-prune", poller.prune, interval=3600, single=True)
        # Also on app.state, for tests and operators' scripts that drive the workers directly.
        app.state.fleet_poller = poller
        yield {"fleet_poller": poller}

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute monitoring",
        description=DESCRIPTION,
        routers=[fleet_router],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_lifespan(settings),
        metrics=MonitoringMetrics,
        outbox=OutboxEvent,
        openapi_tags=TAGS,
    )
