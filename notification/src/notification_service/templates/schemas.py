"""Template bodies (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import SafeInput
from notification_service.models import Channel
from notification_service.templates.engine import MAX_SOURCE_CHARS

Source = Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)]


class TemplateOut(BaseModel):
    event_type: str
    channel: Channel
    parts: dict[str, str]
    custom: bool = Field(description="An admin's version (false: the shipped default).")
    updated_at: datetime | None = None


class TemplateIn(SafeInput):
    """Every part of the channel (in-app: title, body; email: subject, text, html; webhook:
    text), as Jinja2 templates; checked by rendering them with sample data."""

    model_config = ConfigDict(extra="forbid")

    parts: dict[str, Source] = Field(min_length=1, max_length=3)


class PreviewIn(SafeInput):
    """Parts to try instead of the stored ones (none: preview what is in force)."""

    model_config = ConfigDict(extra="forbid")

    parts: dict[str, Source] | None = Field(default=None, max_length=3)


class Rendered(BaseModel):
    parts: dict[str, str]
