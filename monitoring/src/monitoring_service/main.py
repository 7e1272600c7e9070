"""The monitoring app: routes, and in the lifespan the fleet poller, the registry sync, the
event consumer (and, as they land, the metrics scraper and the alert evaluator)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from fedimpute_shared.streams import StreamConsumer
from monitoring_service.alerts.router import router as alerts_router
from monitoring_service.alerts.service import AlertEvaluator
from monitoring_service.clients import Clients
from monitoring_service.config import Settings
from monitoring_service.dashboard.router import router as dashboard_router
from monitoring_service.events.processor import MonitoringProcessor
from monitoring_service.events.router import router as dead_letters_router
from monitoring_service.external.router import router as external_router
from monitoring_service.external.sync import RegistrySync, RegistryUnavailable
from monitoring_service.fleet.router import router as fleet_router
from monitoring_service.fleet.service import FleetPoller
from monitoring_service.metrics import MonitoringMetrics
from monitoring_service.models import OutboxEvent
from monitoring_service.status.router import router as status_router
from monitoring_service.telemetry.router import router as metrics_router
from monitoring_service.telemetry.scrape import Scraper

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

logger = logging.getLogger(__name__)

DESCRIPTION = """
The platform watched all the time: every service's health and readiness, the external
imputation services' health (from the registry), key metrics of every service and of the host,
alerts raised and resolved by configured rules, the dashboard, and a public status page.
"""

TAGS = [
    {"name": "fleet", "description": "The platform's own services: health, readiness, uptime."},
    {"name": "external services", "description": "External imputation services' health."},
    {"name": "metrics", "description": "Key series of every service, the host, the stream."},
    {"name": "alerts", "description": "Alerts by configured rules: list, acknowledge."},
    {"name": "dashboard", "description": "Jobs, external services, recent jobs."},
    {"name": "status", "description": "The public status page (no login)."},
    {"name": "dead letters", "description": "Events that could not be processed."},
]


def _sync_task(sync: RegistrySync) -> Any:
    async def run() -> None:
        try:
            await sync.sync_once()
        except RegistryUnavailable as exc:  # expected now and then: logged, tried next round
            logger.warning("registry sync skipped: %s", exc)

    return run


def _lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        if core.redis is None:
            raise RuntimeError("monitoring needs Redis: set REDIS_URL")
        metrics: MonitoringMetrics = core.service_metrics
        clients = Clients.open(settings, core.http)
        poller = FleetPoller(core.sessionmaker, core.http, settings, metrics)
        scraper = Scraper(
            core.sessionmaker,
            core.http,
            core.redis,
            settings,
            metrics,
            clients.job_processor,
            auth_for=clients.scrape_auth,
        )
        evaluator = AlertEvaluator(core.sessionmaker, settings, metrics)
        sync = RegistrySync(core.sessionmaker, clients.registry)
        processor = MonitoringProcessor(core.sessionmaker, max_event_bytes=settings.max_event_bytes)
        consumer = StreamConsumer(
            core.redis, processor, settings.consumer_options(), metrics.consumer
        )
        if settings.workers_enabled:
            core.tasks.every(
                "fleet-poll", poller.poll_once, interval=settings.fleet_poll_seconds, single=True
            )
            core.tasks.every("fleet-prune", poller.prune, interval=3600, single=True)
            core.tasks.every(
                "metrics-scrape",
                scraper.scrape_once,
                interval=settings.metrics_scrape_seconds,
                single=True,
            )
            core.tasks.every("metrics-prune", scraper.prune, interval=3600, single=True)
            core.tasks.every(
                "alert-evaluation",
                evaluator.evaluate_once,
                interval=settings.alert_eval_seconds,
                single=True,
                # after the first checks are in, and the fleet has had time to start
                first_after=max(settings.alert_eval_seconds, settings.alert_startup_grace_seconds),
            )
            core.tasks.every(
                "registry-sync",
                _sync_task(sync),
                interval=settings.registry_sync_seconds,
                single=True,
            )
        if settings.consumer_enabled:
            core.tasks.run("event-consumer", consumer.run, on_stop=consumer.stop)
        # Also on app.state, for tests and operators' scripts that drive the workers directly.
        app.state.fleet_poller, app.state.registry_sync = poller, sync
        app.state.consumer, app.state.clients = consumer, clients
        app.state.scraper, app.state.evaluator = scraper, evaluator
        try:
            yield {
                "fleet_poller": poller,
                "registry_sync": sync,
                "clients": clients,
                "scraper": scraper,
                "status_cache": {},
            }
        finally:
            await clients.aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute monitoring",
        description=DESCRIPTION,
        routers=[
            status_router,
            dashboard_router,
            fleet_router,
            external_router,
            metrics_router,
            alerts_router,
            dead_letters_router,
        ],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_lifespan(settings),
        uses_redis=True,
        metrics=MonitoringMetrics,
        outbox=OutboxEvent,
        openapi_tags=TAGS,
    )
