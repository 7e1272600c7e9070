"""Role and grant bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedimpute_shared.db import utcnow
from fedimpute_shared.text import SafeInput


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]


class GrantIn(SafeInput):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(max_length=50, examples=["service_admin"])
    service_id: uuid.UUID | None = Field(
        default=None,
        description="Limit the grant to one imputation service (its service-registry id).",
    )
    expires_at: datetime | None = Field(default=None, description="When the grant lapses.")

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return value
        if value.tzinfo is None:
            raise ValueError("expires_at needs a timezone")
        if value <= utcnow():
            raise ValueError("expires_at must be in the future")
        return value


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: str = Field(validation_alias="role_name")
    service_id: uuid.UUID | None
    expires_at: datetime | None
    granted_by: uuid.UUID | None
    created_at: datetime
