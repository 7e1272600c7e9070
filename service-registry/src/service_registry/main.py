"""The service-registry app: routes, and the health worker started in the lifespan."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fedimpute_shared.app import create_service_app
from service_registry.config import Settings
from service_registry.services.router import router as services_router

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
The external imputation services FedImpute can send jobs to (Michigan/TOPMed/H3Africa
Cloudgene servers, GA4GH WES nodes, DNAstack), their reference panels, their health, and
discovery of the best service for a request.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute service-registry",
        description=DESCRIPTION,
        routers=[services_router],
        migrations_dir=MIGRATIONS_DIR,
    )
