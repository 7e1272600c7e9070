"""A WES node's capabilities, read from its service-info, and the panels it publishes in ``tags``.

Service-info comes from a remote we do not control, so every field is type-checked and anything
malformed is dropped rather than trusted: the 1.0 and 1.1 shapes (engine versions as a string or
``{workflow_engine_version: [...]}``), the Starter Kit's bare arrays, sapporo's engine-keyed
``default_workflow_engine_parameters`` and DNAstack's ``auth_instruction_url`` all come out in
one normalised shape (documented in docs/service-registry.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from service_registry.health.probes import workflow_types

# The service-info ``tags`` key under which a node publishes its reference panels (a JSON string;
# fixed with the imputation node, see docs/service-registry.md).
PANELS_TAG = "fedimpute.reference_panels"
MAX_PUBLISHED_PANELS = 200


class EngineParameter(BaseModel):
    name: str
    type: str | None = None
    default_value: str | None = None
    workflow_engine: str | None = Field(
        default=None, description="set when the node lists parameters per engine (sapporo)"
    )


class Capabilities(BaseModel):
    """What a WES node says it can run; stored on the service and shown to clients."""

    api_url: str = Field(description="where the WES API answered")
    service_name: str | None = None
    service_version: str | None = None
    workflow_type_versions: dict[str, list[str]] = Field(default_factory=dict)
    workflow_engine_versions: dict[str, list[str]] = Field(default_factory=dict)
    supported_wes_versions: list[str] = Field(default_factory=list)
    supported_filesystem_protocols: list[str] = Field(default_factory=list)
    system_state_counts: dict[str, int] = Field(default_factory=dict)
    default_workflow_engine_parameters: list[EngineParameter] = Field(default_factory=list)
    auth_instructions_url: str | None = None
    synced_at: datetime


def _strings(value: Any) -> list[str]:
    return (
        [str(v) for v in value if isinstance(v, str | int | float)]
        if isinstance(value, list)
        else []
    )


def _engine_versions(value: Any) -> dict[str, list[str]]:
    """1.0/1.0.1: ``{engine: "47"}``; 1.1: ``{engine: {workflow_engine_version: [...]}}``."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, list[str]] = {}
    for engine, versions in value.items():
        if isinstance(versions, dict):
            versions = versions.get("workflow_engine_version")
        out[str(engine)] = [versions] if isinstance(versions, str) else _strings(versions)
    return out


def _engine_parameters(value: Any) -> list[EngineParameter]:
    """The spec's list of ``{name, type, default_value}``, or sapporo's ``{engine: [ ... ]}``."""
    groups: list[tuple[str | None, Any]] = (
        [(None, value)]
        if isinstance(value, list)
        else list(value.items())
        if isinstance(value, dict)
        else []
    )
    params = []
    for engine, items in groups:
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                params.append(
                    EngineParameter(
                        name=item["name"],
                        type=_text(item.get("type")),
                        default_value=_text(item.get("default_value")),
                        workflow_engine=str(engine) if engine is not None else None,
                    )
                )
    return params


def _text(value: Any) -> str | None:
    return (
        str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    )


def capabilities_from(info: dict[str, Any], api_url: str, now: datetime) -> Capabilities:
    counts = info.get("system_state_counts")
    return Capabilities(
        api_url=api_url,
        service_name=_text(info.get("name")),
        service_version=_text(info.get("version")),
        workflow_type_versions=workflow_types(info.get("workflow_type_versions")),
        workflow_engine_versions=_engine_versions(info.get("workflow_engine_versions")),
        supported_wes_versions=_strings(info.get("supported_wes_versions")),
        supported_filesystem_protocols=_strings(info.get("supported_filesystem_protocols")),
        system_state_counts={
            str(k): v
            for k, v in (counts or {}).items()
            if isinstance(v, int) and not isinstance(v, bool)
        }
        if isinstance(counts, dict)
        else {},
        default_workflow_engine_parameters=_engine_parameters(
            info.get("default_workflow_engine_parameters")
        ),
        # DNAstack's cromwell-wes-service spells it auth_instruction_url (spec §3.2).
        auth_instructions_url=_text(
            info.get("auth_instructions_url") or info.get("auth_instruction_url")
        ),
        synced_at=now,
    )


class PublishedPanel(BaseModel):
    """One element of the ``fedimpute.reference_panels`` tag (docs/service-registry.md)."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
    ]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    version: Annotated[str, StringConstraints(max_length=100)] | None = None
    build: Literal["hg19", "hg38"] | None = None
    populations: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,50}$")]] = Field(
        default_factory=list, max_length=100
    )
    samples: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    chromosomes: list[Annotated[str, StringConstraints(min_length=1, max_length=10)]] = Field(
        default_factory=list, max_length=100
    )
    location: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


def published_panels(info: dict[str, Any]) -> tuple[list[PublishedPanel], list[str]]:
    """The panels a node publishes in its tags, and a line per element that was refused."""
    tags = info.get("tags")
    raw = tags.get(PANELS_TAG) if isinstance(tags, dict) else None
    if raw is None:
        return [], []
    try:
        items = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return [], [f"tag {PANELS_TAG} is not valid JSON"]
    if not isinstance(items, list):
        return [], [f"tag {PANELS_TAG} is not a JSON array"]
    panels: list[PublishedPanel] = []
    refused: list[str] = []
    for index, item in enumerate(items[:MAX_PUBLISHED_PANELS]):
        try:
            panels.append(PublishedPanel.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "element"
            refused.append(f"panel #{index}: {where}: {first['msg']}")
    if len(items) > MAX_PUBLISHED_PANELS:
        refused.append(f"only the first {MAX_PUBLISHED_PANELS} panels are read")
    return panels, refused
