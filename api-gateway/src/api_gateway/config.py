"""api-gateway settings (environment variables; see ServiceSettings for the shared ones).

Upstream URLs take a comma-separated list (``SERVICE_REGISTRY_URL=http://a:8002,http://b:8002``):
requests go round-robin over the replicas that are not cooling down (see ``upstreams.py``).
List settings (``CORS_ORIGINS``, ``TRUSTED_PROXIES``, ``PUBLIC_ROUTES``...) accept either a JSON
array or a comma-separated string.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from api_gateway.ratelimit import parse_rate
from api_gateway.routes import RoutePattern
from api_gateway.trust import TrustedProxies
from fedimpute_shared.config import ServiceSettings

StrList = Annotated[list[str], NoDecode]

# Route patterns: "<METHODS> <PATH>", METHODS is "*" or "GET|HEAD"; in PATH "*" matches one
# segment and a final "**" any number (zero included). See routes.RoutePattern.
DEFAULT_PUBLIC_ROUTES = [
    "POST /api/auth/login",
    "POST /api/auth/register",
    "POST /api/auth/refresh",
    # Logout needs only the refresh token: a user whose access token expired can still end
    # the session.
    "POST /api/auth/logout",
    "* /api/auth/password-reset/**",
    "* /api/auth/verify-email/confirm",
    "GET|HEAD /.well-known/jwks.json",
    "GET|HEAD /api/status/**",
    # Signed download links: the token in the path is the credential (file-manager checks it).
    "GET|HEAD /api/files/download/*",
]
# The strict rate-limit class: everything a password or a one-time token can be guessed at.
DEFAULT_LOGIN_ROUTES = [
    "POST /api/auth/login",
    "POST /api/auth/register",
    "* /api/auth/password-reset/**",
    "* /api/auth/verify-email/**",
]
# Large bodies: no JSON size cap, long timeouts, the "upload" rate-limit class (JSON requests to
# these paths stay JSON requests).
DEFAULT_UPLOAD_ROUTES = ["POST|PUT|PATCH /api/files/**"]
# Large responses: long timeouts.
DEFAULT_DOWNLOAD_ROUTES = ["GET|HEAD /api/files/**", "GET|HEAD /api/jobs/*/results/**"]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class Settings(ServiceSettings):
    service_name: str = "api-gateway"
    port: int = 8000
    redis_url: str | None = "redis://127.0.0.1:6379/0"

    # Upstreams (comma-separated replicas). USER_SERVICE_URL comes from ServiceSettings.
    service_registry_url: str = "http://127.0.0.1:8002"
    job_processor_url: str = "http://127.0.0.1:8003"
    file_manager_url: str = "http://127.0.0.1:8004"
    notification_url: str = "http://127.0.0.1:8005"
    monitoring_url: str = "http://127.0.0.1:8006"

    # Passive health: after this many consecutive connect failures a replica is skipped ...
    upstream_max_failures: int = Field(default=3, ge=1)
    # ... for this long, then tried again with one request.
    upstream_cooldown_seconds: float = Field(default=10, gt=0)

    connect_timeout_seconds: float = Field(default=3, gt=0)
    # Longest silence while waiting for (or sending) bytes on ordinary API calls ...
    proxy_timeout_seconds: float = Field(default=30, gt=0)
    # ... and on uploads and downloads, which may legitimately run for hours.
    transfer_timeout_seconds: float = Field(default=600, gt=0)
    max_upstream_connections: int = Field(default=512, ge=1)

    # Bodies of anything but an upload route are refused above this size (413).
    max_json_body_bytes: int = Field(default=1_048_576, ge=1024)

    public_routes: StrList = Field(default_factory=lambda: list(DEFAULT_PUBLIC_ROUTES))
    login_routes: StrList = Field(default_factory=lambda: list(DEFAULT_LOGIN_ROUTES))
    upload_routes: StrList = Field(default_factory=lambda: list(DEFAULT_UPLOAD_ROUTES))
    download_routes: StrList = Field(default_factory=lambda: list(DEFAULT_DOWNLOAD_ROUTES))

    # Rate limits "<requests>/<seconds>" per user (authenticated) or client IP (anonymous).
    rate_limit_enabled: bool = True
    rate_limit_login: str = "10/60"
    rate_limit_upload: str = "120/60"
    rate_limit_default: str = "600/60"
    # Redis down: allow (and count it) when true, else answer 503.
    rate_limit_fail_open: bool = True
    # After a Redis error, requests skip rate limiting for this long instead of each waiting
    # for a timeout.
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0)
    rate_limit_redis_retry_seconds: float = Field(default=1, ge=0)

    # Peers whose X-Forwarded-For is believed (IPs or CIDRs); everyone else is the client.
    trusted_proxies: StrList = Field(default_factory=list)

    # Browser origins allowed to call the API with credentials; never "*".
    cors_origins: StrList = Field(
        default_factory=lambda: [
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://localhost:5173",
            "http://127.0.0.1:5173",
        ]
    )
    cors_max_age_seconds: int = Field(default=600, ge=0)

    # Exchanged API tokens are reused until this many seconds before their JWT expires.
    api_token_renew_margin_seconds: float = Field(default=30, ge=0)
    api_token_cache_size: int = Field(default=10_000, ge=1)
    # Verified JWTs are remembered (until they expire) so a client's repeated calls skip the
    # signature check; bounded LRU.
    verified_token_cache_size: int = Field(default=10_000, ge=0)

    openapi_refresh_seconds: float = Field(default=300, gt=0)
    openapi_retry_seconds: float = Field(default=15, gt=0)

    @field_validator(
        "public_routes",
        "login_routes",
        "upload_routes",
        "download_routes",
        "trusted_proxies",
        "cors_origins",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError("CORS_ORIGINS must list origins explicitly; '*' is not allowed")
        return [origin.rstrip("/") for origin in origins]

    @model_validator(mode="after")
    def _check_patterns_and_limits(self) -> Self:
        for pattern in (
            *self.public_routes,
            *self.login_routes,
            *self.upload_routes,
            *self.download_routes,
        ):
            RoutePattern.parse(pattern)
        for spec in (self.rate_limit_login, self.rate_limit_upload, self.rate_limit_default):
            parse_rate(spec)
        TrustedProxies(self.trusted_proxies)
        return self

    def upstream_urls(self) -> dict[str, list[str]]:
        """Each service's replica URLs, by service name."""
        raw = {
            "user-service": self.user_service_url,
            "service-registry": self.service_registry_url,
            "job-processor": self.job_processor_url,
            "file-manager": self.file_manager_url,
            "notification": self.notification_url,
            "monitoring": self.monitoring_url,
        }
        return {
            name: [u.strip() for u in value.split(",") if u.strip()] for name, value in raw.items()
        }
