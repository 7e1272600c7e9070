"""api-gateway settings (environment variables; see ServiceSettings for the shared ones).

Upstream URLs take a comma-separated list (``SERVICE_REGISTRY_URL=http://a:8002,http://b:8002``):
requests go round-robin over the replicas that are not cooling down (see ``upstreams.py``).
List settings (``CORS_ORIGINS``, ``TRUSTED_PROXIES``, ``PUBLIC_ROUTES``...) accept either a JSON
array or a comma-separated string.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from api_gateway.metrics_access import parse_networks
from api_gateway.ratelimit import parse_rate
from api_gateway.routes import RoutePattern
from fedimpute_shared.client_address import TrustedProxies
from fedimpute_shared.config import ListSetting, ServiceSettings
from fedimpute_shared.fleet import FLEET, fleet_service

StrList = ListSetting[str]
UPSTREAMS = tuple(s for s in FLEET if s.name != "api-gateway")

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
    # The emailed link that lifts a lockout (issue 10, item 16): the token is the credential.
    "POST /api/auth/unlock",
    "GET|HEAD /.well-known/jwks.json",
    "GET|HEAD /api/status/**",
    # Signed download links: the token in the path is the credential (file-manager checks it).
    "GET|HEAD /api/files/download/*",
    # The notification WebSocket authenticates itself (a single-use ticket, or the first
    # message): browsers cannot send Authorization on an upgrade, and tokens stay out of URLs.
    "GET /api/notifications/ws",
]
# The strict rate-limit class: everything a password or a one-time token can be guessed at.
DEFAULT_LOGIN_ROUTES = [
    "POST /api/auth/login",
    "POST /api/auth/register",
    "* /api/auth/password-reset/**",
    "* /api/auth/verify-email/**",
    "POST /api/auth/unlock",
]
# Large bodies: no JSON size cap, long timeouts, the "upload" rate-limit class (JSON requests to
# these paths stay JSON requests).
DEFAULT_UPLOAD_ROUTES = ["POST|PUT|PATCH /api/files/**"]
# Large responses: long timeouts.
DEFAULT_DOWNLOAD_ROUTES = ["GET|HEAD /api/files/**", "GET|HEAD /api/jobs/*/results/**"]


class Settings(ServiceSettings):
    service_name: str = "api-gateway"
    port: int = 8000
    redis_url: str | None = "redis://127.0.0.1:6379/0"

    # Upstreams (comma-separated replicas), one field per service of the fleet table (checked
    # by test_paths_and_routes). USER_SERVICE_URL comes from ServiceSettings.
    service_registry_url: str = fleet_service("service-registry").local_url
    job_processor_url: str = fleet_service("job-processor").local_url
    file_manager_url: str = fleet_service("file-manager").local_url
    notification_url: str = fleet_service("notification").local_url
    monitoring_url: str = fleet_service("monitoring").local_url

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
    # Rate limits count a client address by its network of this size: one end site gets a whole
    # IPv6 /64 (or more), so a per-/128 bucket would be no limit at all.
    # /metrics answers a service token for api-gateway, or a direct peer in these networks (the
    # monitoring network's CIDRs, for a scraper without a token); never the public.
    metrics_allowed_networks: StrList = Field(default_factory=list)
    client_ipv6_prefix: int = Field(default=64, ge=32, le=128)
    client_ipv4_prefix: int = Field(default=32, ge=16, le=32)

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
        parse_networks(self.metrics_allowed_networks)
        return self

    def upstream_urls(self) -> dict[str, list[str]]:
        """Each service's replica URLs, by service name."""
        raw = {service.name: str(getattr(self, service.url_setting)) for service in UPSTREAMS}
        return {
            name: [u.strip() for u in value.split(",") if u.strip()] for name, value in raw.items()
        }
