"""Token bodies: login answers, API tokens, the gateway's exchange, service tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedimpute_shared.permissions import Scope
from fedimpute_shared.text import Line100, SafeInput


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    refresh_expires_in: int


class RefreshIn(SafeInput):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class ApiTokenCreate(SafeInput):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Line100 = Field(examples=["laptop upload script"])
    scopes: list[Scope] = Field(min_length=1, examples=[["jobs:read", "files:write"]])
    expires_in_days: int | None = Field(
        default=None, ge=1, le=365, description="Lifetime (at most a year; default 90 days)."
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value))


class ApiTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="The token itself. Shown this once: store it now.")


class ExchangeIn(SafeInput):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class ExchangeOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    token_id: uuid.UUID
    user_id: uuid.UUID


class ServiceTokenIn(SafeInput):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=100)
    client_secret: str = Field(min_length=1, max_length=500)
    audience: str = Field(min_length=1, max_length=100)


class ServiceTokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class SessionOut(BaseModel):
    """A login session (a device): where and when it started, when it was last refreshed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = False
