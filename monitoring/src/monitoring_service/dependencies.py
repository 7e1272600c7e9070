"""FastAPI dependencies: who may do what, and the lifespan resources handlers need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from fedimpute_shared.auth import Principal, require_roles, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Role, Scope
from monitoring_service.config import Settings
from monitoring_service.metrics import MonitoringMetrics

# The dashboard: every role with monitoring:read (each sees their own jobs; admins all).
Reader = Annotated[Principal, Depends(require_scopes(Scope.MONITORING_READ))]
# The operators' views (/monitoring/...): fleet detail, metrics, alerts, dead letters.
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]

SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
MetricsDep = Annotated[MonitoringMetrics, Depends(from_state("metrics"))]
