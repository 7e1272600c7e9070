"""Request and response bodies of the reference-panels API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fedimpute_shared.text import INT32_MAX, PatchInput, SafeInput
from service_registry.models import PanelAccess

PanelSlug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$"),
]
Population = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_-]+$")
]
Version = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Chromosome = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,10}$")]
# Where a WES node keeps the panel: an absolute path or a URL (file://, https://, s3://...).
PanelLocation = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^(/|[A-Za-z][A-Za-z0-9+.-]*://)\S*$")
]


# samples_count is an integer (int4) column; variants_count a bigint.
SamplesCount = Annotated[int, Field(ge=0, le=INT32_MAX)]
VariantsCount = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Input(SafeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PanelCreate(_Input):
    service_id: uuid.UUID
    slug: PanelSlug
    remote_id: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description=(
            "The service's own identifier: Cloudgene 'apps@h3africa-v6hc-s@1.0.0', "
            "or a WES workflow reference."
        )
    )
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    populations: list[Population] = Field(default_factory=list)
    build: Literal["hg19", "hg38"] | None = None
    samples_count: SamplesCount | None = None
    variants_count: VariantsCount | None = None
    is_available: bool = True
    access: PanelAccess = PanelAccess.PUBLIC
    version: Version | None = None
    location: PanelLocation | None = Field(
        default=None, description="WES: what the workflow's panel input gets (path on the node)"
    )
    chromosomes: list[Chromosome] = Field(default_factory=list, max_length=100)


class PanelUpdate(_Input, PatchInput):
    nullable = frozenset(
        {"description", "build", "samples_count", "variants_count", "version", "location"}
    )

    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    remote_id: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    populations: list[Population] | None = None
    build: Literal["hg19", "hg38"] | None = None
    samples_count: SamplesCount | None = None
    variants_count: VariantsCount | None = None
    is_available: bool | None = None
    access: PanelAccess | None = None
    version: Version | None = None
    location: PanelLocation | None = None
    chromosomes: list[Chromosome] | None = Field(default=None, max_length=100)


class PanelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    service_id: uuid.UUID
    slug: str
    remote_id: str
    display_name: str
    description: str | None
    populations: list[str]
    build: str | None
    samples_count: int | None
    variants_count: int | None
    is_available: bool
    access: PanelAccess
    version: str | None
    location: str | None
    chromosomes: list[str]
    synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PanelFilters(SafeInput):
    service_id: uuid.UUID | None = None
    build: Literal["hg19", "hg38"] | None = None
    population: str | None = None
    is_available: bool | None = None
