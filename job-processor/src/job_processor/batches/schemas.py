"""Request and response bodies of federated batches."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import NoNul
from job_processor.jobs.schemas import JobOptions, JobOut, Ref, Tag, _Input

BatchStatus = Literal[
    "pending", "running", "cancelling", "completed", "partially_completed", "failed", "cancelled"
]


class BatchTarget(_Input):
    service: Ref = Field(description="The service's id or slug.")
    panel: Ref = Field(description="The reference panel's id, slug or remote id on that service.")


class BatchCreate(JobOptions):
    name: Annotated[str, StringConstraints(min_length=1, max_length=150)]
    description: Annotated[NoNul, StringConstraints(max_length=5000)] | None = None
    input_file_ids: list[uuid.UUID] = Field(min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    targets: list[BatchTarget] = Field(
        min_length=2, max_length=10, description="One child job per target (service and panel)."
    )


class BatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    input_file_ids: list[uuid.UUID]
    tags: list[str]
    status: BatchStatus = Field(description="Derived from the children (see the rules).")
    progress: float = Field(description="Mean of the children's progress; a finished child is 1.")
    counts: dict[str, int] = Field(description="Children by status.")
    cancel_requested_at: datetime | None
    created_at: datetime
    updated_at: datetime
    children: list[JobOut]
