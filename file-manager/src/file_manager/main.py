"""The file-manager app: routes, storage, the validation queue and the reaper in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, create_service_app
from file_manager.config import Settings
from file_manager.files.router import internal_router as files_internal_router
from file_manager.files.router import router as files_router
from file_manager.metrics import FileMetrics
from file_manager.models import OutboxEvent
from file_manager.retention.reaper import Reaper
from file_manager.storage import LocalStorage
from file_manager.uploads.resumable import DigestCache
from file_manager.uploads.router import internal_router as uploads_internal_router
from file_manager.uploads.router import router as uploads_router
from file_manager.uploads.tus import router as tus_router
from file_manager.validation.queue import ValidationQueue
from file_manager.validation.service import Validator, requeue_backlog

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
Genotype files: streaming uploads (multipart or raw body) and resumable tus 1.0 uploads, VCF
validation with the rules the imputation servers enforce (with statistics and build detection),
MD5/SHA-256 checksums, downloads with Range requests, signed download links, quotas and
retention.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        storage = LocalStorage(settings.storage_dir)
        metrics: FileMetrics = core.service_metrics
        validator = Validator(core.sessionmaker, storage, settings, metrics)
        queue = ValidationQueue(validator.validate, settings.validation_concurrency)
        reaper = Reaper(core.sessionmaker, storage, settings)

        async def sweep() -> None:
            await reaper.run_once()
            await requeue_backlog(core.sessionmaker, queue.submit)

        # Also on app.state, for operators' scripts and tests that drive the workers directly.
        app.state.validation_queue, app.state.reaper, app.state.storage = queue, reaper, storage
        if settings.reaper_enabled:
            # Replicas may all sweep: each batch is claimed with FOR UPDATE SKIP LOCKED.
            core.tasks.every("retention", sweep, interval=settings.reaper_interval_seconds)
        queue.start()
        try:
            yield {
                "storage": storage,
                "validation_queue": queue,
                "validator": validator,
                "reaper": reaper,
                "tus_digests": DigestCache(),
            }
        finally:
            await queue.stop()

    return create_service_app(
        settings,
        title="FedImpute file-manager",
        description=DESCRIPTION,
        routers=[
            uploads_router,
            tus_router,
            files_router,
            files_internal_router,
            uploads_internal_router,
        ],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=lifespan,
        metrics=FileMetrics.register,
        outbox=OutboxEvent,
    )
