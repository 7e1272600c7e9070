"""Dead-letter bodies (admins)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from notification_service.events.processor import Outcome


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    stream_id: str
    event_id: str | None
    event_type: str | None
    reason: str
    deliveries: int
    fields: dict[str, str]
    created_at: datetime


class ReplayOut(BaseModel):
    outcome: Outcome
