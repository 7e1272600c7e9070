"""FastAPI dependencies: who may do what, and the lifespan resources handlers need."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from fedimpute_shared.auth import Principal, require_admin, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Scope
from notification_service.config import Settings
from notification_service.live.broker import Broker
from notification_service.live.tickets import Tickets
from notification_service.metrics import NotificationMetrics

Reader = Annotated[Principal, Depends(require_scopes(Scope.NOTIFICATIONS_READ))]
Writer = Annotated[Principal, Depends(require_scopes(Scope.NOTIFICATIONS_WRITE))]
# Templates and dead letters: the admin role *and* the admin scope (issue 10, item 3).
Admin = Annotated[Principal, Depends(require_admin())]

SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
MetricsDep = Annotated[NotificationMetrics, Depends(from_state("metrics"))]
BrokerDep = Annotated[Broker, Depends(from_state("broker"))]
TicketsDep = Annotated[Tickets, Depends(from_state("tickets"))]
