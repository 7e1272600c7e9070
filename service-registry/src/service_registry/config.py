"""service-registry settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from pydantic import Field

from fedimpute_shared.config import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "service-registry"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/service_registry_db"

    # Outbound URL policy: loopback/private addresses are refused unless allowed (dev fleet).
    allow_private_urls: bool = False

    # Health worker (see health/worker.py)
    health_worker_enabled: bool = True
    health_check_interval_seconds: float = Field(default=300, gt=0)
    health_check_jitter_ratio: float = Field(default=0.1, ge=0, le=1)
    health_check_concurrency: int = Field(default=50, ge=1)
    health_check_timeout_seconds: float = Field(default=10, gt=0)
    health_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    health_max_redirects: int = Field(default=3, ge=0)
    degraded_after_ms: float = Field(default=3000, gt=0)
    unhealthy_after_failures: int = Field(default=2, ge=1)
    health_history_retention_days: int = Field(default=30, ge=1)
    at_risk_after_days: int = Field(default=25, ge=1)
    deactivate_after_days: int = Field(default=30, ge=1)

    # Caching of on-demand health reads (the 15 min / 1 min / 10 s rule)
    healthy_cache_seconds: float = 900
    unhealthy_recheck_user_seconds: float = 60
    unhealthy_recheck_system_seconds: float = 10
    # Concurrent on-demand checks of one service share a probe made in the last N seconds.
    on_demand_reuse_seconds: float = Field(default=5, ge=0)
