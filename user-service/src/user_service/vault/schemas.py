"""Vault bodies. Secrets go in; only metadata ever comes out (except to job-processor)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fedimpute_shared.text import Line200, SafeInput, Secret
from user_service.models import CredentialType


class _CredentialBase(SafeInput):
    model_config = ConfigDict(extra="forbid")

    label: Line200 | None = Field(default=None, examples=["TOPMed token (lab account)"])
    expires_at: datetime | None = Field(
        default=None, description="When the external service says the credential expires."
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a timezone")
        return value


class ApiTokenCredential(_CredentialBase):
    """A Cloudgene API token (Michigan, TOPMed, H3Africa: sent as X-Auth-Token)."""

    credential_type: Literal[CredentialType.API_TOKEN]
    token: Secret


class BearerTokenCredential(_CredentialBase):
    """A bearer token for a WES node behind OAuth2."""

    credential_type: Literal[CredentialType.BEARER_TOKEN]
    token: Secret


class ClientCredentials(_CredentialBase):
    """An OAuth2 client id and secret (DNAstack)."""

    credential_type: Literal[CredentialType.OAUTH_CLIENT_CREDENTIALS]
    client_id: Secret
    client_secret: Secret


CredentialIn = Annotated[
    ApiTokenCredential | BearerTokenCredential | ClientCredentials,
    Field(discriminator="credential_type"),
]


class CredentialOut(BaseModel):
    """What a client sees of a stored credential: never the secret."""

    model_config = ConfigDict(from_attributes=True)

    service_id: uuid.UUID
    credential_type: CredentialType
    label: str | None
    last_four: str = Field(description="Last four characters of the secret ('' when short).")
    expires_at: datetime | None
    last_verified_at: datetime | None
    last_verification_ok: bool | None
    created_at: datetime
    updated_at: datetime


class CredentialSecretOut(BaseModel):
    """The decrypted credential, for job-processor only."""

    user_id: uuid.UUID
    service_id: uuid.UUID
    credential_type: CredentialType
    secret: dict[str, str] = Field(
        description="{'token'} for api_token/bearer_token; {'client_id', 'client_secret'} "
        "for oauth_client_credentials."
    )
    expires_at: datetime | None


class VerificationReport(SafeInput):
    model_config = ConfigDict(extra="forbid")

    ok: bool
