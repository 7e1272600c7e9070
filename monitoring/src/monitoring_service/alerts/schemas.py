"""Alert bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from monitoring_service.models import AlertState


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rule: str
    kind: str
    severity: str
    subject: str
    summary: str
    value: float | None
    threshold: float | None
    state: AlertState
    started_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    resolved_at: datetime | None
    resolve_reason: str | None
