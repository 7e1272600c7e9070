"""Preference bodies."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from fedimpute_shared.text import SafeInput
from notification_service.models import Category, Digest


class ChannelChoices(SafeInput):
    model_config = ConfigDict(extra="forbid")

    in_app: bool | None = None
    email: bool | None = None
    webhook: bool | None = None


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time (the timezone is a setting of its own): HH:MM, no offset")
    return value


# A wall-clock time in the user's timezone. JSON Schema's "format: time" is RFC 3339's
# full-time, which requires an offset: documented as the pattern it really is.
LocalTime = Annotated[
    time,
    AfterValidator(_local),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "Local time, HH:MM or HH:MM:SS",
            "examples": ["22:00"],
        }
    ),
]


class QuietHours(SafeInput):
    """Emails wait until ``end`` (local time) when they arrive between ``start`` and ``end``;
    the window may span midnight (22:00 to 07:00)."""

    model_config = ConfigDict(extra="forbid")

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours must not start and end at the same time")
        return self


class PreferencesIn(SafeInput):
    """PATCH body: only the fields given change; ``quiet_hours: null`` removes them."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[Category, ChannelChoices] | None = None
    digest: Digest | None = None
    digest_hour: int | None = Field(default=None, ge=0, le=23, description="Local hour.")
    timezone: str | None = Field(default=None, max_length=64, examples=["Africa/Johannesburg"])
    quiet_hours: QuietHours | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class PreferencesOut(BaseModel):
    user_id: uuid.UUID
    channels: dict[Category, dict[str, bool]]
    digest: Digest
    digest_hour: int
    timezone: str
    quiet_hours: QuietHours | None
