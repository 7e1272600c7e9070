"""Logic of the services API: validation that needs settings or the database, then changes.

Functions take a session and never commit: the request's session dependency does.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import Conflict, FieldProblem, NotFound, Unprocessable
from fedimpute_shared.urls import UnsafeURLError, check_outbound_url
from service_registry.config import Settings
from service_registry.models import HealthStatus, ImputationService
from service_registry.services import repository
from service_registry.services.schemas import (
    DNAstackOptions,
    HealthSummary,
    Limits,
    Location,
    ServiceCreate,
    ServiceOut,
    ServiceUpdate,
    check_credentials,
    check_kind_fields,
)
from service_registry.workflows.capabilities import Capabilities
from service_registry.workflows.schemas import WorkflowProfile

_LOCATION_FIELDS = ("country", "city", "data_centre", "latitude", "longitude")
_LIMIT_FIELDS = (
    "max_file_size_bytes",
    "min_samples",
    "max_samples",
    "supported_builds",
    "supported_formats",
)


def safe_url(url: str, settings: Settings, field: str = "base_url") -> str:
    """The URL normalised, or a 422 naming the field and the reason.

    Every URL the registry or job-processor will call goes through here: the base URL, and the
    DNAstack token endpoint (it receives client secrets)."""
    try:
        return check_outbound_url(url, allow_private=settings.allow_private_urls)
    except UnsafeURLError as exc:
        pointer = field.replace(".", "/")
        raise Unprocessable(
            f"{field} is not acceptable: {exc}",
            errors=[
                FieldProblem(
                    pointer=f"#/body/{pointer}",
                    field=f"body.{field}",
                    message=str(exc),
                    code="unsafe_url",
                )
            ],
        ) from None


def _safe_options(options: DNAstackOptions | None, settings: Settings) -> dict[str, Any]:
    if options is None:
        return {}
    checked = options.model_dump()
    if options.token_endpoint:
        checked["token_endpoint"] = safe_url(
            options.token_endpoint, settings, "protocol_options.token_endpoint"
        )
    return checked


async def find(
    session: AsyncSession, id_or_slug: str, *, include_deleted: bool = False
) -> ImputationService:
    """A service by UUID or slug, else 404 (soft-deleted ones only when asked)."""
    try:
        service = await repository.get(session, uuid.UUID(id_or_slug))
    except ValueError:
        service = await repository.get_by_slug(session, id_or_slug)
    if service is None or (service.deleted_at is not None and not include_deleted):
        raise not_found(id_or_slug)
    return service


def not_found(id_or_slug: str) -> NotFound:
    return NotFound(f"no imputation service {id_or_slug!r}")


async def create(
    session: AsyncSession, body: ServiceCreate, settings: Settings
) -> ImputationService:
    base_url = safe_url(body.base_url, settings)
    options = _safe_options(body.protocol_options, settings)
    if await repository.slug_taken(session, body.slug):
        raise Conflict(f"the slug {body.slug!r} is already used by another service", slug=body.slug)
    service = ImputationService(
        name=body.name,
        slug=body.slug,
        kind=body.kind,
        base_url=base_url,
        description=body.description,
        version=body.version,
        cloudgene_app_id=body.cloudgene_app_id,
        protocol_options=options,
        requires_credentials=body.requires_credentials,
        credential_type=body.credential_type,
        is_active=body.is_active,
        health_status=HealthStatus.UNKNOWN,
        consecutive_failures=0,
        **body.location.model_dump(),
        **body.limits.model_dump(),
    )
    session.add(service)
    await _flush_or_conflict(session, body.slug)
    return service


async def update(
    session: AsyncSession, service: ImputationService, body: ServiceUpdate, settings: Settings
) -> ImputationService:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"location", "limits"})
    if "base_url" in changes:
        changes["base_url"] = safe_url(changes["base_url"], settings)
        changes["api_url"] = None  # found again at the next probe or sync
    if "protocol_options" in changes:
        changes["protocol_options"] = _safe_options(body.protocol_options, settings)
    if body.location is not None:
        changes |= body.location.model_dump()
    if body.limits is not None:
        changes |= body.limits.model_dump()
    for field, value in changes.items():
        setattr(service, field, value)
    _check_consistency(service)
    await session.flush()
    return service


async def set_location(
    session: AsyncSession, service: ImputationService, location: Location
) -> ImputationService:
    for field, value in location.model_dump().items():
        setattr(service, field, value)
    await session.flush()
    return service


async def soft_delete(session: AsyncSession, service: ImputationService) -> None:
    """Hide and deactivate; history and panels stay, and the slug stays reserved."""
    service.is_active = False
    service.deleted_at = utcnow()
    await session.flush()


async def restore(session: AsyncSession, service: ImputationService) -> ImputationService:
    service.deleted_at = None
    await session.flush()
    return service


async def hard_delete(session: AsyncSession, service: ImputationService) -> None:
    """Remove the service with its panels and health history (admins only)."""
    await session.delete(service)
    await session.flush()


def _check_consistency(service: ImputationService) -> None:
    options = DNAstackOptions(**service.protocol_options) if service.protocol_options else None
    try:
        check_kind_fields(service.kind, service.cloudgene_app_id, options)
        check_credentials(service.requires_credentials, service.credential_type)
        Limits(**{f: getattr(service, f) for f in _LIMIT_FIELDS})
    except ValueError as exc:
        raise Unprocessable(str(exc).removeprefix("Value error, ")) from None


async def _flush_or_conflict(session: AsyncSession, slug: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        # Two concurrent creates with one slug: the unique index decides, the loser gets a 409.
        raise Conflict(f"the slug {slug!r} is already used by another service", slug=slug) from None


def is_at_risk(first_unhealthy_at: datetime | None, settings: Settings) -> bool:
    """Unhealthy long enough that it will soon be deactivated automatically."""
    if first_unhealthy_at is None:
        return False
    return utcnow() - first_unhealthy_at >= timedelta(days=settings.at_risk_after_days)


def to_out(service: ImputationService, settings: Settings) -> ServiceOut:
    """The public view of a service (location, limits and health grouped).

    Built with ``model_construct``: every value comes from a typed column, and validating
    them again cost 20-30 us per row of ``GET /services`` (docs/benchmarks.md); the JSON
    columns (capabilities, workflow profile) are still validated.
    """
    return ServiceOut.model_construct(
        id=service.id,
        name=service.name,
        slug=service.slug,
        kind=service.kind,
        base_url=service.base_url,
        description=service.description,
        version=service.version,
        cloudgene_app_id=service.cloudgene_app_id,
        cloudgene_app_version=service.cloudgene_app_version,
        api_url=service.api_url,
        protocol_options=service.protocol_options or {},
        capabilities=Capabilities.model_validate(service.capabilities)
        if service.capabilities
        else None,
        workflow_profile=WorkflowProfile.model_validate(service.workflow_profile)
        if service.workflow_profile
        else None,
        location=Location.model_construct(**{f: getattr(service, f) for f in _LOCATION_FIELDS}),
        limits=Limits.model_construct(**{f: getattr(service, f) for f in _LIMIT_FIELDS}),
        requires_credentials=service.requires_credentials,
        credential_type=service.credential_type,
        is_active=service.is_active,
        deleted_at=service.deleted_at,
        health=HealthSummary.model_construct(
            status=service.health_status,
            checked_at=service.health_checked_at,
            response_time_ms=service.response_time_ms,
            last_error=service.last_error,
            consecutive_failures=service.consecutive_failures,
            first_unhealthy_at=service.first_unhealthy_at,
            at_risk=is_at_risk(service.first_unhealthy_at, settings),
        ),
        created_at=service.created_at,
        updated_at=service.updated_at,
    )
