"""Setting a workflow profile: build it (from a template or whole), then check it against what
the node advertises, so a profile never names a workflow language, version or engine the node
does not run."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.problems import (
    Conflict,
    FieldProblem,
    NotFound,
    Unprocessable,
    field_problems,
)
from service_registry.models import ImputationService, ServiceKind
from service_registry.workflows.capabilities import Capabilities
from service_registry.workflows.schemas import ProfileRequest, WorkflowProfile
from service_registry.workflows.templates import TEMPLATES

WES_KINDS = (ServiceKind.GA4GH_WES, ServiceKind.DNASTACK)


def build_profile(request: ProfileRequest) -> WorkflowProfile:
    """The template (if named) with the request's fields laid over it, validated whole."""
    fields = request.model_dump(exclude_unset=True, exclude={"template"}, by_alias=True)
    base: dict[str, Any] = {}
    if request.template is not None:
        template = TEMPLATES.get(request.template)
        if template is None:
            raise NotFound(f"no workflow profile template {request.template!r}")
        base = dict(template.profile)
    try:
        return WorkflowProfile.model_validate(base | fields)
    except ValidationError as exc:
        raise Unprocessable(
            "the workflow profile is incomplete or inconsistent",
            errors=field_problems(exc.errors()),
        ) from None


def mismatches(profile: WorkflowProfile, caps: Capabilities) -> list[FieldProblem]:
    """Where the profile asks for something the node's service-info does not offer."""
    problems: list[tuple[str, str]] = []
    versions = caps.workflow_type_versions.get(profile.workflow_type)
    if versions is None:
        offered = ", ".join(sorted(caps.workflow_type_versions)) or "none"
        problems.append(("workflow_type", f"the node runs {offered}, not {profile.workflow_type}"))
    elif profile.workflow_type_version not in versions:
        problems.append(
            (
                "workflow_type_version",
                f"the node runs {profile.workflow_type} {', '.join(versions) or '(no version)'},"
                f" not {profile.workflow_type_version}",
            )
        )
    if profile.workflow_engine is not None:
        problems += _engine_problems(profile, caps)
    protocols = {p.lower() for p in caps.supported_filesystem_protocols}
    if profile.input_delivery == "url" and protocols and not protocols & {"http", "https"}:
        problems.append(
            (
                "input_delivery",
                f"the node reads only {', '.join(sorted(protocols))}, not http(s) URLs",
            )
        )
    return [
        FieldProblem(
            pointer=f"#/body/{name}", field=f"body.{name}", message=message, code="unsupported"
        )
        for name, message in problems
    ]


def _engine_problems(profile: WorkflowProfile, caps: Capabilities) -> list[tuple[str, str]]:
    wes = caps.supported_wes_versions
    if wes and not any(v.startswith("1.1") for v in wes):
        return [
            ("workflow_engine", f"workflow_engine is WES 1.1; the node speaks {', '.join(wes)}")
        ]
    engines = caps.workflow_engine_versions
    if engines and profile.workflow_engine not in engines:
        return [("workflow_engine", f"the node's engines are {', '.join(sorted(engines))}")]
    known = engines.get(profile.workflow_engine or "", [])
    if profile.workflow_engine_version and known and profile.workflow_engine_version not in known:
        return [
            (
                "workflow_engine_version",
                f"the node runs {profile.workflow_engine} {', '.join(known)}",
            )
        ]
    return []


async def set_profile(
    session: AsyncSession, service: ImputationService, request: ProfileRequest
) -> WorkflowProfile:
    if service.kind not in WES_KINDS:
        raise Unprocessable("workflow profiles apply to WES services (kind ga4gh_wes or dnastack)")
    profile = build_profile(request)
    if not service.capabilities:
        raise Conflict(
            "the node's capabilities are not known yet: sync the service first "
            f"(POST /services/{service.slug}/sync-panels), the profile is checked against them"
        )
    problems = mismatches(profile, Capabilities.model_validate(service.capabilities))
    if problems:
        raise Unprocessable("the node does not offer what this profile asks for", errors=problems)
    service.workflow_profile = profile.model_dump(mode="json", by_alias=True)
    await session.flush()
    return profile


async def clear_profile(session: AsyncSession, service: ImputationService) -> None:
    service.workflow_profile = None
    await session.flush()


def stored_profile(service: ImputationService) -> WorkflowProfile | None:
    if not service.workflow_profile:
        return None
    return WorkflowProfile.model_validate(service.workflow_profile)
