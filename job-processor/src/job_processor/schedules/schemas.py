"""Request and response bodies of the scheduled jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from job_processor.jobs.schemas import _Input

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Cron = Annotated[
    str,
    StringConstraints(min_length=9, max_length=100, pattern=r"^[0-9A-Za-z*,/#?LW -]+$"),
]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w+/-]+$")]


class ScheduleCreate(_Input):
    template_id: uuid.UUID = Field(description="A template of mine or a shared one.")
    name: Name | None = Field(default=None, description="The template's name when absent.")
    input_file_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    run_at: AwareDatetime | None = Field(default=None, description="Run once at this time.")
    cron: Cron | None = Field(
        default=None,
        description="Or run on this 5-field cron expression (minute hour day month weekday).",
    )
    timezone: TimeZone = Field(default="UTC", description="The cron expression's time zone.")
    enabled: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.run_at is None) == (self.cron is None):
            raise ValueError("give either run_at (once) or cron (repeating), not both or neither")
        return self


class ScheduleUpdate(_Input):
    """Only the members given change; a new time, expression or zone recomputes the next run."""

    name: Name | None = None
    input_file_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=200)
    run_at: AwareDatetime | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.run_at is not None and self.cron is not None:
            raise ValueError("give either run_at (once) or cron (repeating), not both")
        return self


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    template_id: uuid.UUID
    name: str
    input_file_ids: list[uuid.UUID]
    run_at: datetime | None
    cron: str | None
    timezone: str
    enabled: bool
    next_run_at: datetime | None = Field(description="The next occurrence; null: none left.")
    last_run_at: datetime | None
    last_job_id: uuid.UUID | None
    last_error: str | None
    run_count: int
    created_at: datetime
    updated_at: datetime


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    occurrence_at: datetime
    job_id: uuid.UUID | None
    error: str | None
    created_at: datetime
