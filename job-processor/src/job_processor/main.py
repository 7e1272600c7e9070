"""The job-processor app: routes, and in the lifespan the outbox relay."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fedimpute_shared.app import create_service_app
from job_processor.config import Settings
from job_processor.models import OutboxEvent

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
Imputation jobs from submission to results: checked before anything is sent, submitted once to
the chosen external service (Cloudgene, GA4GH WES, DNAstack), followed until it ends, its
results stored in file-manager.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute job-processor",
        description=DESCRIPTION,
        routers=[],
        migrations_dir=MIGRATIONS_DIR,
        outbox=OutboxEvent,
    )
