"""Account bodies: registration, profile, password and email changes, admin views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from fedimpute_shared.text import Line200, SafeInput
from user_service.roles.schemas import GrantOut

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$"


def normalize_email(value: str) -> str:
    """Syntax-checked, trimmed and lower-cased: one address, one account, whatever its case."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=USERNAME_PATTERN),
    Field(
        description="3-32 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        examples=["ada.lovelace"],
    ),
]
Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalize_email)]
# Length and strength are checked by the password policy (a clear 422 naming the field).
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Country = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$"),
    Field(description="ISO 3166-1 alpha-2 code, e.g. ZA."),
]
Orcid = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$"),
    Field(examples=["0000-0002-1825-0097"]),
]


class _Input(SafeInput):
    model_config = ConfigDict(extra="forbid")


class ProfileFields(_Input):
    full_name: Line200 | None = None
    institution: Line200 | None = None
    department: Line200 | None = None
    country: Country | None = None
    orcid: Orcid | None = None

    @field_validator("full_name", "institution", "department")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class RegisterIn(ProfileFields):
    username: Username
    email: Email
    password: Password


class ProfileUpdate(ProfileFields):
    """PATCH body: only the fields given change (``null`` clears one)."""


class PasswordChange(_Input):
    current_password: Password
    new_password: Password


class EmailChange(_Input):
    new_email: Email
    current_password: Password


class LoginIn(_Input):
    login: str = Field(
        min_length=1,
        max_length=254,
        validation_alias=AliasChoices("login", "username", "email"),
        description="Username or email address.",
    )
    password: Password


class PasswordResetRequest(_Input):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]


class PasswordResetConfirm(_Input):
    token: str = Field(min_length=1, max_length=200)
    new_password: Password


class EmailVerificationConfirm(_Input):
    token: str = Field(min_length=1, max_length=200)


class AccountUnlockConfirm(_Input):
    token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str
    email_verified: bool
    full_name: str | None
    institution: str | None
    department: str | None
    country: str | None
    orcid: str | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserList(BaseModel):
    """Internal: users with their contact details."""

    items: list[UserOut]


class MeOut(UserOut):
    roles: list[str] = Field(description="Platform-wide roles.")
    scopes: list[str] = Field(description="Permissions those roles give.")
    service_roles: dict[str, list[str]] = Field(
        description="Roles held for single imputation services (service id -> roles)."
    )


class AdminUserOut(UserOut):
    grants: list[GrantOut]
    deactivated_at: datetime | None


class UserFilters(SafeInput):
    q: str | None = Field(
        default=None, max_length=100, description="Username or email starts with this."
    )
    role: str | None = Field(default=None, max_length=50)
    is_active: bool | None = None
