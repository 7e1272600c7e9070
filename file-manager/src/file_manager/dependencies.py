"""FastAPI dependencies: who may do what, and the lifespan resources handlers need."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import Depends, Query, Request

from fedimpute_shared.auth import Principal, require_scopes, require_services
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Scope
from file_manager.config import Settings
from file_manager.metrics import FileMetrics
from file_manager.storage import Storage
from file_manager.validation.queue import ValidationQueue

_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


def public_base(request: Request, settings: Settings) -> str:
    """The path clients reach ``/files`` at: ``X-Forwarded-Prefix`` (set by the gateway) +
    ``/files`` when present and well formed, else ``PUBLIC_BASE_PATH``."""
    prefix = request.headers.get("x-forwarded-prefix")
    if prefix is not None and _PREFIX.fullmatch(prefix.rstrip("/")):
        return prefix.rstrip("/") + "/files"
    return settings.public_base_path


Reader = Annotated[Principal, Depends(require_scopes(Scope.FILES_READ))]
# The internal routes: job-processor only, acting for the user it names.
JobProcessor = Annotated[Principal, Depends(require_services("job-processor"))]
OnBehalfOf = Annotated[uuid.UUID, Query(description="The user on whose behalf the call is made.")]
Writer = Annotated[Principal, Depends(require_scopes(Scope.FILES_WRITE))]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
MetricsDep = Annotated[FileMetrics, Depends(from_state("metrics"))]
StorageDep = Annotated[Storage, Depends(from_state("storage"))]
QueueDep = Annotated[ValidationQueue, Depends(from_state("validation_queue"))]
