"""In-app notification bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import Line200, NoNul, SafeInput
from notification_service.models import Category


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    category: Category
    event_type: str
    title: str
    body: str
    link: str | None
    data: dict[str, Any]
    read: bool
    read_at: datetime | None
    created_at: datetime


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    updated: int


class NotificationCreate(SafeInput):
    """Internal: a notification a service creates directly (in-app, pushed live)."""

    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    category: Category
    title: Annotated[Line200, StringConstraints(min_length=1)]
    body: Annotated[NoNul, Field(max_length=2000)] = ""
    link: Annotated[str, StringConstraints(max_length=2048, pattern=r"^/[^\s]*$")] | None = Field(
        default=None, description="A path in the web app, e.g. /jobs/<id>."
    )
    event_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,99}$")] = "direct"
    # Makes a retried call create nothing new (unique with the user).
    dedupe_id: uuid.UUID | None = None
