"""Request and response bodies of the services API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fedimpute_shared.text import INT32_MAX, PatchInput, SafeInput
from service_registry.models import CredentialType, HealthStatus, ServiceKind
from service_registry.panels.schemas import PanelOut
from service_registry.workflows.capabilities import Capabilities
from service_registry.workflows.schemas import WorkflowProfile

Slug = Annotated[
    str,
    StringConstraints(min_length=2, max_length=100, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"),
]
Build = Literal["hg19", "hg38"]
FileFormat = Literal["vcf", "plink"]


class _Input(SafeInput):
    # Unknown fields are an error: a typo ("min_sample") must not be silently ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Location(_Input):
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code, e.g. ZA."
    )
    city: Annotated[str, StringConstraints(max_length=200)] | None = None
    data_centre: Annotated[str, StringConstraints(max_length=200)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @model_validator(mode="after")
    def _both_coordinates(self) -> Location:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class Limits(_Input):
    max_file_size_bytes: Annotated[int, Field(gt=0, le=2**63 - 1)] | None = None  # bigint
    min_samples: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None  # integer columns
    max_samples: Annotated[int, Field(gt=0, le=INT32_MAX)] | None = None
    supported_builds: list[Build] = Field(default_factory=list)
    supported_formats: list[FileFormat] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Limits:
        low, high = self.min_samples, self.max_samples
        if low is not None and high is not None and low > high:
            raise ValueError("min_samples must not exceed max_samples")
        return self


class DNAstackOptions(_Input):
    """Non-secret DNAstack settings: which API flavour, and for Workbench its namespace."""

    mode: Literal["cromwell", "workbench"] = "cromwell"
    namespace: Annotated[str, StringConstraints(max_length=200)] | None = None
    token_endpoint: Annotated[str, StringConstraints(max_length=2048)] | None = None


class ServiceCreate(_Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    slug: Slug
    kind: ServiceKind
    base_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="http(s) root of the service, e.g. https://impute.afrigen-d.org"
    )
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    version: Annotated[str, StringConstraints(max_length=100)] | None = None
    cloudgene_app_id: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None,
        description="Cloudgene application id (michigan kind), e.g. imputationserver2; "
        "found by sync-panels when empty",
    )
    protocol_options: DNAstackOptions | None = Field(
        default=None, description="Only for kind=dnastack."
    )
    location: Location = Field(default_factory=Location)
    limits: Limits = Field(default_factory=Limits)
    requires_credentials: bool = False
    credential_type: CredentialType = CredentialType.NONE
    is_active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ServiceCreate:
        check_kind_fields(self.kind, self.cloudgene_app_id, self.protocol_options)
        check_credentials(self.requires_credentials, self.credential_type)
        return self


class ServiceUpdate(_Input, PatchInput):
    """PATCH body: only the fields given change; ``null`` clears only the optional texts."""

    nullable = frozenset({"description", "version", "cloudgene_app_id"})

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    base_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    version: Annotated[str, StringConstraints(max_length=100)] | None = None
    cloudgene_app_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    protocol_options: DNAstackOptions | None = None
    location: Location | None = None
    limits: Limits | None = None
    requires_credentials: bool | None = None
    credential_type: CredentialType | None = None
    is_active: bool | None = None


def check_kind_fields(
    kind: ServiceKind, app_id: str | None, options: DNAstackOptions | None
) -> None:
    """Fields that only make sense for one kind must not be given for another."""
    if app_id and kind is not ServiceKind.MICHIGAN:
        raise ValueError("cloudgene_app_id applies only to kind 'michigan'")
    if options is not None and kind is not ServiceKind.DNASTACK:
        raise ValueError("protocol_options applies only to kind 'dnastack'")
    if options is not None and options.mode == "workbench" and not options.namespace:
        raise ValueError("a DNAstack Workbench service needs protocol_options.namespace")


def check_credentials(required: bool, credential_type: CredentialType) -> None:
    if required and credential_type is CredentialType.NONE:
        raise ValueError("requires_credentials needs a credential_type other than 'none'")
    if not required and credential_type is not CredentialType.NONE:
        raise ValueError("credential_type is set but requires_credentials is false")


class HealthSummary(BaseModel):
    status: HealthStatus
    checked_at: datetime | None
    response_time_ms: float | None
    last_error: str | None
    consecutive_failures: int
    first_unhealthy_at: datetime | None
    at_risk: bool = Field(
        description="Unhealthy long enough that it will soon be deactivated automatically."
    )


class ServiceOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    kind: ServiceKind
    base_url: str
    description: str | None
    version: str | None
    cloudgene_app_id: str | None
    cloudgene_app_version: str | None = Field(description="as the server reported it at sync")
    api_url: str | None = Field(description="WES: where the API answered (found by probe/sync)")
    protocol_options: dict[str, Any]
    capabilities: Capabilities | None = Field(
        description="WES: what the node's service-info says it runs (null until synced)"
    )
    workflow_profile: WorkflowProfile | None = Field(
        description="WES: how job-processor builds a run on this node"
    )
    location: Location
    limits: Limits
    requires_credentials: bool
    credential_type: CredentialType
    is_active: bool
    deleted_at: datetime | None
    health: HealthSummary
    created_at: datetime
    updated_at: datetime


class ServiceDetail(ServiceOut):
    """``GET /internal/services/{id}``: a service with everything job-processor needs to submit
    to it: its API root, Cloudgene app, WES capabilities and workflow profile, and its panels
    (with their remote ids, versions and, on WES nodes, locations)."""

    panels: list[PanelOut]


class ServiceFilters(SafeInput):
    kind: ServiceKind | None = None
    is_active: bool | None = None
    health_status: HealthStatus | None = None
    build: Build | None = None
    country: str | None = None
    include_deleted: bool = False
