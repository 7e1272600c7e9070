"""user-service settings (environment variables; see ServiceSettings for the shared ones).

Secrets beyond the shared ones: each service's client secret (``SERVICE_CLIENT_SECRETS``) and
each vault key (``VAULT_KEYS``). Both have development defaults so `make up` works; the
production guard refuses them (every entry is checked like a ``SecretStr`` field).
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from fedimpute_shared.config import DefaultSecretError, ListSetting, ServiceSettings
from fedimpute_shared.fleet import SERVICE_NAMES
from fedimpute_shared.permissions import Role
from fedimpute_shared.sealed import SealedSecretError, seal

_DEV_CLIENT_SECRET = "dev-service-secret-change-me"  # the shared SERVICE_CLIENT_SECRET default
_DEV_VAULT_KEY_ID = "dev-1"
# 32 bytes, base64: the development vault key. Refused in production (see _refuse_dev_vault_key).
_DEV_VAULT_KEY = base64.b64encode(b"fedimpute-dev-vault-key-32bytes!").decode()


def _dev_client_secrets() -> dict[str, SecretStr]:
    return {name: SecretStr(_DEV_CLIENT_SECRET) for name in SERVICE_NAMES}


class Settings(ServiceSettings):
    service_name: str = "user-service"
    port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/user_management_db"

    # ---------------------------------------------------------------- signing keys (JWKS)
    # PEM private key (RSA >= 2048 bits -> RS256, or EC P-256 -> ES256) that signs every token.
    # Outside production a missing file is generated at start; in production it must exist.
    jwt_signing_key_file: Path = Path("var/user-service/jwt-signing-key.pem")
    # More PEM keys (public or private), comma-separated: published in the JWKS and accepted,
    # never used to sign. Put the previous key here after a rotation (and the next one before).
    jwt_verification_key_files: ListSetting[Path] = Field(default_factory=list)
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    service_token_ttl_seconds: int = Field(default=600, ge=60, le=3600)

    # ---------------------------------------------------------------- sessions and tokens
    refresh_token_ttl_seconds: int = Field(default=14 * 86400, ge=3600)
    # A session (a refresh-token family) ends this long after login, however often refreshed.
    session_max_age_seconds: int = Field(default=30 * 86400, ge=3600)
    api_token_max_days: int = Field(default=365, ge=1, le=365)
    api_token_default_days: int = Field(default=90, ge=1, le=365)
    password_reset_ttl_seconds: int = Field(default=3600, ge=300)
    email_verification_ttl_seconds: int = Field(default=3 * 86400, ge=300)
    # The notification service's delivery public key (unpadded base64url X25519): one-time
    # tokens in account emails are sealed to it, so no table, stream or log here holds one
    # usable (docs/notification.md, "Account emails"). Required in production; without it
    # (development) account emails are not sent, with a warning.
    notification_delivery_public_key: str | None = None
    # Published outbox rows (account emails among them) go soon: they are only for inspection.
    outbox_retention_hours: float = Field(default=1.0, gt=0)
    # Redis pub/sub channel where revoked API token ids are announced (gateways evict them).
    api_token_revoked_channel: str = "fedimpute:api-token-revoked"

    # Service tokens: client id -> secret, JSON in SERVICE_CLIENT_SECRETS.
    service_client_secrets: dict[str, SecretStr] = Field(default_factory=_dev_client_secrets)

    # ---------------------------------------------------------------- accounts
    default_role: Role = Role.RESEARCHER
    password_min_length: int = Field(default=12, ge=8)
    password_min_score: int = Field(default=3, ge=0, le=4)  # zxcvbn score 0..4
    # Failed logins on one account from one client address before that pair locks.
    login_max_failures: int = Field(default=5, ge=1)
    # Failed logins on one account from all addresses before it locks for everyone (its owner
    # is emailed an unlock link).
    login_account_max_failures: int = Field(default=50, ge=1)
    account_unlock_ttl_seconds: int = Field(default=86400, ge=300)
    login_lockout_seconds: int = Field(default=900, ge=1)
    # Failed logins from one client address (any accounts) before that address is throttled.
    login_ip_max_failures: int = Field(default=30, ge=1)
    # argon2id cost; tests lower it, production keeps the OWASP-recommended defaults.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # First administrator, created at start when no admin exists yet and all three are set.
    bootstrap_admin_username: str | None = None
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    # ---------------------------------------------------------------- credential vault
    # JSON object key id -> base64 of a 32-byte AES key; VAULT_ACTIVE_KEY_ID encrypts new data.
    vault_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {_DEV_VAULT_KEY_ID: SecretStr(_DEV_VAULT_KEY)}
    )
    vault_active_key_id: str = _DEV_VAULT_KEY_ID

    # ---------------------------------------------------------------- request handling
    # Peers whose X-Forwarded-For is believed (the gateway); CIDRs or addresses.
    trusted_proxies: ListSetting[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # The login address throttle counts an IPv6 client by its network of this size (one end
    # site has a whole /64: counting per /128 would be no limit). Same setting as the gateway's.
    client_ipv6_prefix: int = Field(default=64, ge=32, le=128)
    max_body_bytes: int = Field(default=65536, ge=1024)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("notification_delivery_public_key")
    @classmethod
    def _delivery_key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                seal(value, "probe")
            except SealedSecretError as exc:
                raise ValueError(f"NOTIFICATION_DELIVERY_PUBLIC_KEY: {exc}") from None
        return value

    @model_validator(mode="after")
    def _delivery_key_in_production(self) -> Self:
        if self.is_production and self.notification_delivery_public_key is None:
            raise ValueError(
                "NOTIFICATION_DELIVERY_PUBLIC_KEY is required in production (account emails)"
            )
        return self

    @field_validator("vault_keys")
    @classmethod
    def _aes_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not value:
            raise ValueError("VAULT_KEYS needs at least one key")
        for kid, key in value.items():
            try:
                raw = base64.b64decode(key.get_secret_value(), validate=True)
            except ValueError:
                raise ValueError(f"vault key {kid!r} is not valid base64") from None
            if len(raw) != 32:
                raise ValueError(f"vault key {kid!r} must be 32 bytes (AES-256), not {len(raw)}")
        return value

    @model_validator(mode="after")
    def _active_vault_key_exists(self) -> Self:
        if self.vault_active_key_id not in self.vault_keys:
            raise ValueError(
                f"VAULT_ACTIVE_KEY_ID {self.vault_active_key_id!r} is not in VAULT_KEYS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_vault_key(self) -> Self:
        if self.is_production and any(
            k.get_secret_value() == _DEV_VAULT_KEY for k in self.vault_keys.values()
        ):
            raise DefaultSecretError(
                "refusing to start in production with the development vault key in VAULT_KEYS"
            )
        return self

    def secret_fields(self) -> dict[str, SecretStr]:
        """Every secret the production guard checks: each client secret and vault key too.

        The bootstrap admin password is a password, not a key: it is checked for strength when
        used, not against the 32-character key rule.
        """
        fields = super().secret_fields()
        fields.pop("bootstrap_admin_password", None)
        for name, secret in self.service_client_secrets.items():
            fields[f"service_client_secrets[{name}]"] = secret
        for kid, key in self.vault_keys.items():
            fields[f"vault_keys[{kid}]"] = key
        return fields
