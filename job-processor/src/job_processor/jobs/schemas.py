"""Request and response bodies of the jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import Line200, NoNul, SafeInput
from job_processor.models import JobMode, JobStatus, Phasing

Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\w.@:/+-]+$")]
Build = Literal["hg19", "hg38"]


class _Input(SafeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class JobOptions(_Input):
    """What to run, independent of the target."""

    build: Build
    phasing: Phasing = Phasing.EAGLE
    population: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    r2_filter: Annotated[float, Field(ge=0, le=1)] | None = None
    mode: JobMode = JobMode.IMPUTATION


class JobCreate(JobOptions):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[NoNul, StringConstraints(max_length=5000)] | None = None
    service: Ref = Field(description="The service's id or slug.")
    panel: Ref = Field(description="The reference panel's id, slug or remote id on that service.")
    input_file_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class Target(_Input):
    service: Ref
    panel: Ref | None = Field(default=None, description="Every panel of the service when absent.")


class PreflightRequest(JobOptions):
    input_file_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    targets: list[Target] | None = Field(
        default=None, max_length=50, description="Every active service and panel when absent."
    )


class ReasonOut(BaseModel):
    code: str
    message: str
    field: str | None = None


class PreflightTarget(BaseModel):
    service_id: uuid.UUID | None
    service_slug: str
    service_name: str | None
    panel: str | None
    ok: bool
    reasons: list[ReasonOut]


class PreflightOut(BaseModel):
    targets: list[PreflightTarget]
    file_reasons: list[ReasonOut] = Field(
        description="What is wrong with the files on any target (not yours, not validated)."
    )


class RetryRequest(_Input):
    service: Ref | None = Field(
        default=None, description="Another service offering the same panel; the same when absent."
    )


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    service_id: uuid.UUID
    service_slug: str
    service_type: str
    panel_id: uuid.UUID
    panel_slug: str
    build: str
    phasing: Phasing
    population: str | None
    r2_filter: float | None
    mode: JobMode
    tags: list[str]
    input_file_ids: list[uuid.UUID]
    status: JobStatus
    status_message: str | None
    remote_id: str | None
    remote_state: str | None
    progress: float | None
    queue_position: int | None
    paused_note: str | None = Field(description="Why the job waits on its service, if it does.")
    result_file_ids: list[uuid.UUID]
    batch_id: uuid.UUID | None
    retry_of_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    message: str | None
    remote_state: str | None
    created_at: datetime


class MessagesOut(BaseModel):
    status_message: str | None
    paused_note: str | None
    remote_state: str | None
    steps: list[str] = Field(description="The remote service's step messages, in order.")
    result_notes: list[str] = Field(description="Results that could not be fetched, and why.")


class ResultsOut(BaseModel):
    status: JobStatus
    result_file_ids: list[uuid.UUID]
    notes: list[str]
    password: str | None = Field(
        description="The password of the result archives (Cloudgene), for the owner only."
    )


class JobFilters(SafeInput):
    status: JobStatus | None = None
    service: Line200 | None = None
    tag: Line200 | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Admins only: another user's.")


class StatsOut(BaseModel):
    scope: Literal["own", "global"]
    by_status: dict[str, int]
    last_24h: dict[str, int]
    success_rate_24h: float | None
    per_service: dict[str, dict[str, int]]
