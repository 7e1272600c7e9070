"""The service-registry app: routes, and the health worker started in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from fedimpute_shared.tasks import jittered
from service_registry.config import Settings
from service_registry.discovery.router import router as discovery_router
from service_registry.health.http import probe_client
from service_registry.health.router import internal_router as internal_health_router
from service_registry.health.router import router as health_router
from service_registry.health.service import CheckCoordinator, OnDemandChecker
from service_registry.health.worker import HealthWorker
from service_registry.metrics import RegistryMetrics
from service_registry.models import OutboxEvent
from service_registry.panels.router import router as panels_router
from service_registry.panels.sync_router import router as sync_router
from service_registry.services.listing import RenderedServices
from service_registry.services.router import internal_router as internal_services_router
from service_registry.services.router import router as services_router
from service_registry.workflows.router import router as workflows_router

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
The external imputation services FedImpute can send jobs to (Michigan/TOPMed/H3Africa
Cloudgene servers, GA4GH WES nodes, DNAstack), their reference panels, their health, and
discovery of the best service for a request.
"""

TAGS = [
    {"name": "services", "description": "Register and manage external imputation services."},
    {"name": "reference panels", "description": "The panels each service offers."},
    {"name": "health", "description": "Health checks, history and uptime."},
    {"name": "discovery", "description": "Which service fits a request best, and why."},
    {
        "name": "workflow profiles",
        "description": "How jobs run on a WES node: workflow, engine, parameter mapping.",
    },
]


def _registry_lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        client = probe_client(settings.allow_private_urls, settings.health_check_timeout_seconds)
        worker = HealthWorker(
            core.engine, core.sessionmaker, client, settings, core.service_metrics
        )
        if settings.health_worker_enabled:
            # The sweep takes its own advisory lock (an on-demand sweep takes it too).
            interval = jittered(
                settings.health_check_interval_seconds, settings.health_check_jitter_ratio
            )
            core.tasks.every(
                "health-sweep", worker.sweep_once, interval=interval, first_after=interval
            )
        yield {
            "probe_http": client,
            "health_checker": OnDemandChecker(
                core.sessionmaker,
                client,
                CheckCoordinator(settings.on_demand_reuse_seconds),
                settings,
            ),
            "health_worker": worker,
            "rendered_services": RenderedServices(settings),
        }

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute service-registry",
        description=DESCRIPTION,
        routers=[
            discovery_router,  # before services_router: /services/discover is not a slug
            services_router,
            sync_router,
            health_router,
            panels_router,
            workflows_router,
            internal_health_router,
            internal_services_router,
        ],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_registry_lifespan(settings),
        metrics=RegistryMetrics,
        outbox=OutboxEvent,
        openapi_tags=TAGS,
    )
