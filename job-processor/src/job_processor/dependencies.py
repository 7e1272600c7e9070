"""FastAPI dependencies: who may do what, and the lifespan resources handlers need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from fedimpute_shared.auth import Principal, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Scope
from job_processor.config import Settings
from job_processor.jobs.service import Context

Reader = Annotated[Principal, Depends(require_scopes(Scope.JOBS_READ))]
Writer = Annotated[Principal, Depends(require_scopes(Scope.JOBS_WRITE))]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
ContextDep = Annotated[Context, Depends(from_state("jobs"))]
