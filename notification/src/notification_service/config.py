"""notification settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.fleet import fleet_service
from fedimpute_shared.streams import ConsumerOptions


class SmtpSecurity(StrEnum):
    """How the SMTP connection is protected."""

    NONE = "none"  # plain text: a local relay or the development sink only
    STARTTLS = "starttls"  # connect in clear, upgrade with STARTTLS (port 587)
    TLS = "tls"  # implicit TLS from the first byte (port 465)


class Settings(ServiceSettings):
    service_name: str = "notification"
    port: int = fleet_service("notification").port
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/notification_db"

    # Where people use the platform: every link in an email starts here
    # ({PUBLIC_BASE_URL}/reset-password?token=..., {PUBLIC_BASE_URL}/jobs/<id>).
    public_base_url: str = "http://localhost:8000"
    # Opens the one-time tokens user-service seals to us (docs/notification.md, "Account
    # emails"): unpadded base64url of an X25519 private key. Without it, account emails fail.
    delivery_private_key: SecretStr | None = None

    # ------------------------------------------------------------------ event consumer
    consumer_enabled: bool = True  # tests switch the consumer off and drive it directly
    consumer_group: str = Field(default="notification", min_length=1, max_length=100)
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    consumer_block_ms: int = Field(default=2000, ge=10, le=60_000)
    # An entry left unacknowledged this long (its consumer died, or its processing failed) is
    # claimed again; after consumer_max_deliveries attempts it is dead-lettered.
    consumer_claim_idle_seconds: float = Field(default=30, gt=0)
    consumer_max_deliveries: int = Field(default=5, ge=1)
    # A stream entry's payload larger than this is refused unread (dead-lettered).
    max_event_bytes: int = Field(default=65_536, ge=1024)

    # ------------------------------------------------------------------ email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8125, ge=1, le=65535)
    smtp_security: SmtpSecurity = SmtpSecurity.NONE
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=15, gt=0)
    smtp_validate_certs: bool = True
    # A CA bundle (PEM) to trust instead of the system's, for a relay with a private CA.
    smtp_ca_file: Path | None = None
    mail_from: str = Field(default="FedImpute <no-reply@localhost>", min_length=3, max_length=254)
    email_max_attempts: int = Field(default=8, ge=1, le=50)
    email_retry_base_seconds: float = Field(default=30, gt=0)
    email_retry_max_seconds: float = Field(default=3600, gt=0)

    # ------------------------------------------------------------------ webhooks
    # Derives each endpoint's signing secret (HMAC of the endpoint id): no secret at rest.
    webhook_signing_key: SecretStr = SecretStr("dev-webhook-signing-key-change-me")
    allow_private_urls: bool = False  # webhooks to loopback/private addresses (dev fleet only)
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=30, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600, gt=0)
    webhook_max_endpoints_per_user: int = Field(default=10, ge=1, le=100)

    # ------------------------------------------------------------------ delivery workers
    delivery_workers_enabled: bool = True  # the email, webhook and digest senders
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    delivery_batch_size: int = Field(default=50, ge=1, le=1000)
    # A claimed email or webhook call not finished within this is tried again (a crash).
    delivery_lease_seconds: float = Field(default=120, gt=0)
    digest_poll_seconds: float = Field(default=300, gt=0)

    # ------------------------------------------------------------------ WebSocket
    ws_ticket_ttl_seconds: int = Field(default=30, ge=5, le=300)
    # A connection without a ticket or Authorization header must authenticate this fast.
    ws_auth_timeout_seconds: float = Field(default=10, gt=0)
    ws_heartbeat_seconds: float = Field(default=25, gt=0)
    # Messages waiting for one client; a client that lets more pile up is dropped.
    ws_send_queue_size: int = Field(default=256, ge=8)
    ws_send_timeout_seconds: float = Field(default=10, gt=0)
    ws_max_client_message_bytes: int = Field(default=8192, ge=256)
    # What a reconnecting client can get back (per user): the last N pushes, kept this long.
    ws_replay_size: int = Field(default=500, ge=10)
    ws_replay_hours: float = Field(default=24, gt=0)
    ws_channel: str = Field(default="fedimpute:notification:push", min_length=1, max_length=200)

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(
            stream=self.event_stream,
            group=self.consumer_group,
            batch_size=self.consumer_batch_size,
            block_ms=self.consumer_block_ms,
            claim_idle_seconds=self.consumer_claim_idle_seconds,
            max_deliveries=self.consumer_max_deliveries,
        )

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("delivery_private_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        text = value.get_secret_value()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("DELIVERY_PRIVATE_KEY is not base64url") from None
        if len(raw) != 32:
            raise ValueError("DELIVERY_PRIVATE_KEY must be 32 bytes (an X25519 private key)")
        return value

    @model_validator(mode="after")
    def _safe_delivery(self) -> Self:
        if self.smtp_username and self.smtp_security is SmtpSecurity.NONE:
            raise ValueError("SMTP credentials must not travel in clear: set SMTP_SECURITY")
        if self.is_production:
            if self.delivery_private_key is None:
                raise ValueError("DELIVERY_PRIVATE_KEY is required in production")
            if not self.public_base_url.startswith("https://"):
                raise ValueError("PUBLIC_BASE_URL must be https:// in production")
        return self
