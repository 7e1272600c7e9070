"""Request and response of discovery."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedimpute_shared.text import SafeInput
from service_registry.models import HealthStatus, ServiceKind


class DiscoverQuery(SafeInput):
    model_config = ConfigDict(extra="forbid")

    build: Literal["hg19", "hg38"] | None = Field(default=None, description="Build of your data.")
    panel: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="Wanted panel: slug, Cloudgene id (apps@...) or name."
    )
    population: Annotated[str, Field(max_length=50)] | None = None
    samples: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Samples in your data."
    )
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")] | None = Field(
        default=None, description="Your country (ISO 3166-1 alpha-2)."
    )
    kind: ServiceKind | None = None

    @model_validator(mode="after")
    def _both_coordinates(self) -> DiscoverQuery:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class ScorePart(BaseModel):
    score: float = Field(description="0 to 1")
    weight: float
    points: float = Field(description="score * weight")
    reason: str


class PanelMatch(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    display_name: str
    remote_id: str
    build: str | None
    populations: list[str]


class ServiceBrief(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    kind: ServiceKind
    country: str | None
    health_status: HealthStatus


class RankedService(BaseModel):
    service: ServiceBrief
    score: float = Field(description="0 to 100")
    parts: dict[str, ScorePart]
    matching_panels: list[PanelMatch]


class ExcludedService(BaseModel):
    service: ServiceBrief
    reason: str


class Discovery(BaseModel):
    results: list[RankedService]
    excluded: list[ExcludedService]
