"""user-service tables: accounts, roles and grants, sessions and tokens, audit log, vault.

No secret is stored in the clear: passwords are argon2id hashes, refresh/API/one-time tokens are
SHA-256 hashes of high-entropy random values, and vault credentials are AES-GCM ciphertexts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fedimpute_shared.db import Timestamps, UUIDPrimaryKey, new_metadata, str_enum, utcnow
from fedimpute_shared.events import OutboxEvent as OutboxEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


def _created_at() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )


# ------------------------------------------------------------------ accounts


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (
        # Usernames are unique whatever their case ("Alice" and "alice" are one account).
        Index("uq_users_username_lower", func.lower(text("username")), unique=True),
    )

    username: Mapped[str] = mapped_column(String(32))
    # Stored normalized (trimmed, lower case), so the plain unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    institution: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    orcid: Mapped[str | None] = mapped_column(String(19))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class TokenPurpose(StrEnum):
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"
    ACCOUNT_UNLOCK = "account_unlock"


class OneTimeToken(UUIDPrimaryKey, Base):
    """A password-reset, email-verification or account-unlock token, emailed, usable once."""

    __tablename__ = "one_time_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[TokenPurpose] = mapped_column(str_enum(TokenPurpose, 30))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the token was sent to (a verification confirms exactly this address).
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed-login counter for one key: ``user:<id>``, ``name:<sha256>``, either of them
    ``@<address hash>``, or ``ip:<address>`` (see ``auth/throttle.py``).

    Keyed by the login identifier when no account matches, so a locked unknown name looks
    exactly like a locked account (the response never reveals whether an account exists).
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------ roles


class RoleRecord(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")


class Permission(Base):
    __tablename__ = "permissions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")


class RolePermission(Base):
    __tablename__ = "role_permissions"

    role_name: Mapped[str] = mapped_column(
        ForeignKey("roles.name", ondelete="CASCADE"), primary_key=True
    )
    permission_name: Mapped[str] = mapped_column(
        ForeignKey("permissions.name", ondelete="CASCADE"), primary_key=True
    )


class RoleGrant(UUIDPrimaryKey, Base):
    """A role given to a user, for the whole platform or for one external service only."""

    __tablename__ = "role_grants"
    __table_args__ = (
        UniqueConstraint("user_id", "role_name", "service_id", postgresql_nulls_not_distinct=True),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role_name: Mapped[str] = mapped_column(ForeignKey("roles.name"))
    # An imputation service's id in service-registry; NULL = the grant holds everywhere.
    service_id: Mapped[uuid.UUID | None]
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    granted_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _created_at()


# ------------------------------------------------------------------ sessions and tokens


class AuthSession(UUIDPrimaryKey, Base):
    """One login: the family of refresh tokens that rotate from it."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(String(50))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class RefreshToken(UUIDPrimaryKey, Base):
    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when the token was exchanged for the next one; presenting it again is theft.
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiToken(UUIDPrimaryKey, Base):
    """A personal API token (``fgi_...``) for scripts; only its hash is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index(
            "uq_api_tokens_user_name_live",
            "user_id",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    # The first characters of the token, shown in listings so an owner can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(50)))
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------ audit log


class AuditEvent(UUIDPrimaryKey, Base):
    """One security-relevant action. Written by user-service and, over /internal, by others."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_time", "occurred_at", "id"),
        Index("ix_audit_events_actor", "actor_id", "occurred_at"),
        Index("ix_audit_events_target", "target_id", "occurred_at"),
        Index("ix_audit_events_action", "action", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = _created_at()
    action: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))  # success | failure | denied
    actor_type: Mapped[str] = mapped_column(String(20))  # user | service | anonymous | system
    actor_id: Mapped[str | None] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    source_service: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


# ------------------------------------------------------------------ credential vault


class CredentialType(StrEnum):
    API_TOKEN = "api_token"  # Cloudgene X-Auth-Token (Michigan, TOPMed, H3Africa)
    BEARER_TOKEN = "bearer_token"  # a WES node behind OAuth2 with a user token
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials"  # DNAstack client id + secret


class ServiceCredential(UUIDPrimaryKey, Timestamps, Base):
    """A user's credential for one external imputation service, AES-GCM encrypted."""

    __tablename__ = "service_credentials"
    __table_args__ = (UniqueConstraint("user_id", "service_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    service_id: Mapped[uuid.UUID]
    credential_type: Mapped[CredentialType] = mapped_column(str_enum(CredentialType, 40))
    label: Mapped[str | None] = mapped_column(String(200))
    last_four: Mapped[str] = mapped_column(String(4))
    key_id: Mapped[str] = mapped_column(String(50))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_verification_ok: Mapped[bool | None] = mapped_column(Boolean)


class OutboxEvent(OutboxEventMixin, Base):
    """Events waiting for the relay (password reset and email verification requests)."""
