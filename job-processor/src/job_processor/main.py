"""The job-processor app: the jobs API, and in the lifespan the clients of the other services,
the outbox relay (from the factory) and the submitter, poller and results collector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from job_processor.clients import Upstreams
from job_processor.config import Settings
from job_processor.jobs.router import internal_router, router
from job_processor.jobs.service import Context
from job_processor.models import OutboxEvent
from job_processor.passwords import PasswordBox
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
]


def _lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        upstreams = Upstreams(settings, core.http)
        ctx = Context(settings, upstreams, PasswordBox(settings.result_password_key))
        app.state.upstreams = upstreams
        try:
            yield {"jobs": ctx}
        finally:
            await upstreams.aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute job-processor",
        description=DESCRIPTION,
        routers=[router, internal_router, templates_router],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_lifespan(settings),
        outbox=OutboxEvent,
        openapi_tags=TAGS,
    )
