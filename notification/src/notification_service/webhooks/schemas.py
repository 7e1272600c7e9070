"""Webhook bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import Line200, SafeInput
from notification_service.models import DeliveryStatus, WebhookFormat

WebhookURL = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048)]


class EndpointIn(SafeInput):
    model_config = ConfigDict(extra="forbid")

    url: WebhookURL = Field(examples=["https://hooks.slack.com/services/T000/B000/XXXX"])
    format: WebhookFormat = WebhookFormat.GENERIC
    description: Line200 | None = None


class EndpointUpdate(SafeInput):
    model_config = ConfigDict(extra="forbid")

    url: WebhookURL | None = None
    format: WebhookFormat | None = None
    description: Line200 | None = None
    active: bool | None = None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    format: WebhookFormat
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(
        description="Signs every delivery (X-FedImpute-Signature). Shown only now: keep it."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID | None
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    duration_ms: int | None
    created_at: datetime
    finished_at: datetime | None
