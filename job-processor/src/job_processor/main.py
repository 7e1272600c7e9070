"""The job-processor app: the jobs API, and in the lifespan the clients of the other services,
the outbox relay (from the factory) and the submitter, poller and results collector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from fedimpute_shared.http import create_http_client
from fedimpute_shared.urls import GuardedTransport
from job_processor.adapters import SERVICE_TYPES, Adapters
from job_processor.adapters.base import Adapter
from job_processor.batches.router import router as batches_router
from job_processor.clients import Upstreams
from job_processor.config import Settings
from job_processor.credentials.router import router as credentials_router
from job_processor.jobs.router import internal_router, router
from job_processor.jobs.service import Context
from job_processor.jobs.worker import AdapterLookup, Workers
from job_processor.metrics import METRICS_KEY, JobMetrics
from job_processor.models import OutboxEvent
from job_processor.passwords import PasswordBox
from job_processor.schedules.router import router as schedules_router
from job_processor.schedules.service import Scheduler
from job_processor.templates.router import router as templates_router

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
Imputation jobs from submission to results: checked before anything is sent (pre-flight across
services), submitted once to the chosen external service (Cloudgene, GA4GH WES, DNAstack),
followed until it ends, its results stored in file-manager. Every status change is kept and
published as an event.
"""

TAGS = [
    {"name": "jobs", "description": "My imputation jobs."},
    {"name": "job-templates", "description": "Saved parameter sets, mine or shared."},
    {"name": "scheduled-jobs", "description": "Templates run at a time or on a cron expression."},
    {"name": "credentials", "description": "My service credentials checked against the service."},
]


def remote_client(settings: Settings) -> httpx.AsyncClient:
    """The client every adapter talks to remote services with: addresses checked on connect
    (no private ones in production), explicit timeouts, a bounded pool."""
    return create_http_client(
        timeout=httpx.Timeout(settings.remote_timeout_seconds, connect=10),
        transport=GuardedTransport(allow_private=settings.allow_private_urls),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )


def adapter_lookup(client: httpx.AsyncClient) -> AdapterLookup:
    """One adapter per protocol (Cloudgene, WES, DNAstack), built on first use and kept (the
    DNAstack token cache survives); KeyError for a kind without one."""
    adapters = Adapters(client)

    def lookup(service_type: str) -> Adapter:
        if service_type not in SERVICE_TYPES:
            raise KeyError(service_type)
        return adapters.get(service_type)

    return lookup


def _lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        # Every session of this app counts its committed job moves in this app's metrics.
        core.sessionmaker.configure(info={METRICS_KEY: core.service_metrics})
        upstreams = Upstreams(settings, core.http)
        ctx = Context(settings, upstreams, PasswordBox(settings.result_password_key))
        remote = remote_client(settings)
        adapters = adapter_lookup(remote)
        workers = Workers(core.sessionmaker, settings, upstreams, ctx.box, adapters)
        if settings.workers_enabled:
            every = settings.worker_interval_seconds
            core.tasks.every("job-submitter", workers.submit_due, interval=every)
            core.tasks.every("job-poller", workers.poll_due, interval=every)
            core.tasks.every("job-results", workers.collect_due, interval=every)
        scheduler = Scheduler(core.sessionmaker, ctx)
        if settings.workers_enabled:
            # No lock needed: each due schedule is claimed with FOR UPDATE SKIP LOCKED.
            core.tasks.every(
                "job-schedules", scheduler.fire_due, interval=settings.schedule_interval_seconds
            )
        # Also on app.state, for tests and operators' scripts that drive the workers directly.
        app.state.upstreams, app.state.workers = upstreams, workers
        app.state.scheduler = scheduler
        try:
            yield {"jobs": ctx, "adapters": adapters}
        finally:
            await workers.aclose()
            await remote.aclose()
            await upstreams.aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute job-processor",
        description=DESCRIPTION,
        # batches first: its /jobs/batches paths must not be taken for a job id
        routers=[
            batches_router,
            router,
            internal_router,
            templates_router,
            schedules_router,
            credentials_router,
        ],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_lifespan(settings),
        outbox=OutboxEvent,
        metrics=JobMetrics,
        openapi_tags=TAGS,
    )
