"""Settings every service shares, read from the environment (pydantic-settings).

Each service subclasses :class:`ServiceSettings`, adds its own fields and sets ``service_name``.
Secrets have development defaults so `make up` works out of the box; :meth:`ServiceSettings.
refuse_default_secrets` makes a production start fail loudly if one of them is still in use.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fedimpute_shared.events import EVENT_STREAM
from fedimpute_shared.fleet import fleet_service
from fedimpute_shared.logs import redact_value

__all__ = [
    "DEFAULT_SECRET_MARKERS",
    "MIN_SECRET_LENGTH",
    "DefaultSecretError",
    "Environment",
    "ListSetting",
    "ServiceSettings",
    "parse_list",
    "validated_copy",
]

# Values that must never reach production. A secret equal to one of these, or shorter than
# MIN_SECRET_LENGTH, is refused when ENVIRONMENT=production.
DEFAULT_SECRET_MARKERS = ("change-me", "dev-", "development", "insecure", "secret", "password")
MIN_SECRET_LENGTH = 32


T = TypeVar("T")


def parse_list(value: Any) -> Any:
    """A list setting from the environment: a JSON array (``["a", "b"]``) or a comma-separated
    string (``a, b``); blanks around items and empty items are dropped. Lists pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


ListSetting = Annotated[list[T], NoDecode, BeforeValidator(parse_list)]
"""A list-valued setting, e.g. ``trusted_proxies: ListSetting[str]``: see :func:`parse_list`.
(``NoDecode`` stops pydantic-settings from insisting on JSON before the parser sees it.)"""


class Environment(StrEnum):
    """Where a service runs. Only an explicit ``development`` is relaxed (development secrets,
    no Redis); anything else — ``production``, ``test``, or nothing set at all — gets the
    production rules (issue 10, item 15): a deployment that forgets the variable is guarded."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DefaultSecretError(ValueError):
    """A production service was configured with a development default secret."""


class ServiceSettings(BaseSettings):
    """Base settings: identity of the service, its database, Redis, token trust and logs."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = "service"
    service_version: str = "0.1.0"
    environment: Environment = Environment.PRODUCTION
    # Where uvicorn listens. Loopback by default; containers set HOST=0.0.0.0.
    host: str = "127.0.0.1"
    port: int = 8000

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    database_pool_size: int = Field(default=10, ge=1)
    redis_url: str | None = None

    # Token trust (user-service issues; every service verifies itself, see DESIGN.md §4).
    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = "fedimpute-user-service"
    jwt_audience: str = "fedimpute-api"
    jwks_cache_seconds: int = Field(default=300, ge=1)

    # This service's own client credentials, used to obtain service tokens for outbound calls.
    user_service_url: str = fleet_service("user-service").local_url
    service_client_secret: SecretStr = SecretStr("dev-service-secret-change-me")

    # Signs pagination cursors so a tampered cursor is refused (400) instead of trusted.
    cursor_secret: SecretStr = SecretStr("dev-cursor-secret-change-me")

    log_level: str = "INFO"
    log_json: bool = True

    # Request bodies above this size are refused with a 413 (routes registered as large-body
    # routes, such as uploads, are exempt); see fedimpute_shared.body_limit.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # The outbox relay (fedimpute_shared.outbox), run by every service that writes events.
    outbox_relay_enabled: bool = True
    outbox_relay_interval_seconds: float = Field(default=0.5, gt=0)
    outbox_relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    # Published rows are kept this long (for inspection), then deleted.
    outbox_retention_hours: float = Field(default=72, gt=0)
    event_stream: str = Field(default=EVENT_STREAM, min_length=1, max_length=200)
    # The stream is trimmed to about this many entries (XADD MAXLEN ~): Redis memory stays
    # bounded; consumers that fall further behind than this lose the oldest entries.
    event_stream_max_length: int = Field(default=100_000, ge=1000)

    @property
    def is_production(self) -> bool:
        """Production rules apply: everywhere but an explicit ``ENVIRONMENT=development``."""
        return self.environment is not Environment.DEVELOPMENT

    def secret_fields(self) -> dict[str, SecretStr]:
        """Every ``SecretStr`` field of this settings object, by name."""
        return {
            name: value
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        }

    @model_validator(mode="after")
    def refuse_default_secrets(self) -> Self:
        """Outside ``ENVIRONMENT=development``, refuse to start with a development or weak
        secret, or without Redis (rate limits, token revocations and events need it: without
        it they would be silently off). Loudly, naming what is wrong."""
        if not self.is_production:
            return self
        problems: list[str] = []
        bad = [name for name, value in self.secret_fields().items() if _looks_default(value)]
        if bad:
            problems.append(
                "default or weak secrets: "
                + ", ".join(sorted(bad))
                + f" (set them to random values of at least {MIN_SECRET_LENGTH} characters)"
            )
        if not self.redis_url:
            problems.append("REDIS_URL is not set")
        if problems:
            raise DefaultSecretError(
                f"refusing to start in {self.environment} (only ENVIRONMENT=development is "
                "relaxed): " + "; ".join(problems)
            )
        return self

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to log: secrets masked (``SecretStr`` dumps as ``**********``), and
        every URL's password too (``DATABASE_URL``, ``REDIS_URL`` carry one in production)."""
        dumped: dict[str, Any] = redact_value(self.model_dump(mode="json"))
        return dumped


def _looks_default(secret: SecretStr) -> bool:
    value = secret.get_secret_value()
    lowered = value.lower()
    return len(value) < MIN_SECRET_LENGTH or any(m in lowered for m in DEFAULT_SECRET_MARKERS)


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def validated_copy(settings: SettingsT, **changes: Any) -> SettingsT:
    """``settings`` with ``changes`` applied *and validated* (bounds, validators, the production
    guard), unlike ``model_copy(update=...)``, which lets any value through."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    return type(settings)(**(values | changes))
