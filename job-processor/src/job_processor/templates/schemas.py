"""Request and response bodies of the job templates API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import NoNul
from job_processor.jobs.schemas import Build, JobOptions, Ref, Tag, _Input
from job_processor.models import JobMode, Phasing

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[NoNul, StringConstraints(max_length=5000)]


class TemplateCreate(JobOptions):
    name: Name
    description: Description | None = None
    shared: bool = Field(default=False, description="Every user may read and submit it.")
    service: Ref = Field(description="The service's id or slug.")
    panel: Ref = Field(description="The reference panel's id, slug or remote id on that service.")
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class TemplateUpdate(_Input):
    """Only the members given change; the target and options are checked again."""

    name: Name | None = None
    description: Description | None = None
    shared: bool | None = None
    service: Ref | None = None
    panel: Ref | None = None
    build: Build | None = None
    phasing: Phasing | None = None
    population: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    r2_filter: Annotated[float, Field(ge=0, le=1)] | None = None
    mode: JobMode | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)


class TemplateSubmit(_Input):
    """What a submission adds to the template: the files, and optionally a name and more tags."""

    input_file_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    name: Name | None = Field(default=None, description="The template's name when absent.")
    description: Description | None = None
    tags: list[Tag] = Field(
        default_factory=list, max_length=20, description="Added to the template's tags."
    )


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    shared: bool
    service: str
    panel: str
    build: str
    phasing: Phasing
    population: str | None
    r2_filter: float | None
    mode: JobMode
    tags: list[str]
    usage_count: int = Field(description="Jobs submitted from this template.")
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
