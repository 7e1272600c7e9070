"""Audit log bodies: entries as shown, filters, and what another service may append."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fedimpute_shared.text import SafeInput

ActionName = Annotated[
    str, StringConstraints(min_length=3, max_length=100, pattern=r"^[a-z][a-z0-9_.:-]*$")
]
ShortText = Annotated[str, StringConstraints(max_length=100)]
_MAX_DETAILS_JSON = 8192


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    action: str
    outcome: str
    actor_type: str
    actor_id: str | None
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    source_service: str
    details: dict[str, Any]


class AuditFilters(SafeInput):
    action: str | None = Field(
        default=None, description="Exact action, or a prefix ending in '*' (e.g. 'auth.*')."
    )
    outcome: Literal["success", "failure", "denied"] | None = None
    actor_id: str | None = None
    target_id: str | None = None
    user_id: uuid.UUID | None = Field(
        default=None, description="Entries where this user is the actor or the target."
    )
    source_service: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditAppend(SafeInput):
    """An entry another service records (its name is taken from its service token)."""

    model_config = ConfigDict(extra="forbid")

    action: ActionName
    outcome: Literal["success", "failure", "denied"] = "success"
    actor_type: Literal["user", "service", "anonymous", "system"]
    actor_id: ShortText | None = None
    target_type: Annotated[str, StringConstraints(max_length=50)] | None = None
    target_id: ShortText | None = None
    ip: Annotated[str, StringConstraints(max_length=45)] | None = None
    user_agent: Annotated[str, StringConstraints(max_length=512)] | None = None
    request_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    occurred_at: datetime | None = Field(
        default=None,
        description="When the caller says it happened (timezone required): kept in "
        "details.reported_at; the entry's time is user-service's.",
    )
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at needs a timezone")
        return value

    @field_validator("details")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > _MAX_DETAILS_JSON:
            raise ValueError(f"details must stay under {_MAX_DETAILS_JSON} bytes of JSON")
        return value


class AuditAppended(BaseModel):
    id: uuid.UUID
