"""monitoring settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from fedimpute_shared.config import ListSetting, ServiceSettings
from fedimpute_shared.fleet import SERVICE_NAMES, fleet_service
from fedimpute_shared.streams import ConsumerOptions
from monitoring_service.alerts.rules import DEFAULT_RULES, AlertRule


class Settings(ServiceSettings):
    service_name: str = "monitoring"
    port: int = fleet_service("monitoring").port
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/monitoring_db"

    # ------------------------------------------------------------------ the fleet
    # Where each service is (the launcher and compose set every <SERVICE>_URL).
    api_gateway_url: str = fleet_service("api-gateway").local_url
    service_registry_url: str = fleet_service("service-registry").local_url
    job_processor_url: str = fleet_service("job-processor").local_url
    file_manager_url: str = fleet_service("file-manager").local_url
    notification_url: str = fleet_service("notification").local_url
    monitoring_url: str = fleet_service("monitoring").local_url
    # The fleet services watched (names of the fleet table); a deployment running only some of
    # them lists those, so a service it does not run does not count as down.
    watched_services: ListSetting[str] = Field(default_factory=lambda: list(SERVICE_NAMES))
    # Background work; tests switch it off and drive each worker directly.
    workers_enabled: bool = True
    fleet_poll_seconds: float = Field(default=15, gt=0)
    # Each /health and /ready probe must answer within this (a hung service is "down").
    fleet_probe_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # Fleet checks and metric samples older than this are deleted (uptime covers 30 days).
    history_retention_days: int = Field(default=35, ge=31)

    # ------------------------------------------------------------------ metrics
    metrics_scrape_seconds: float = Field(default=30, gt=0)
    # A /metrics body larger than this, or with more samples, is refused unread/unparsed.
    metrics_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    metrics_max_samples: int = Field(default=50_000, ge=100)
    metrics_retention_days: int = Field(default=7, ge=1)
    # The file systems whose usage is watched (disk alert, dashboard).
    disk_paths: ListSetting[str] = Field(default_factory=lambda: ["/"])

    # ------------------------------------------------------------------ external services
    registry_sync_seconds: float = Field(default=60, gt=0)

    # ------------------------------------------------------------------ event consumer
    consumer_enabled: bool = True
    consumer_group: str = Field(default="monitoring", min_length=1, max_length=100)
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    consumer_block_ms: int = Field(default=2000, ge=10, le=60_000)
    consumer_claim_idle_seconds: float = Field(default=30, gt=0)
    consumer_max_deliveries: int = Field(default=5, ge=1)
    max_event_bytes: int = Field(default=65_536, ge=1024)

    # ------------------------------------------------------------------ alerts
    alert_eval_seconds: float = Field(default=30, gt=0)
    # No evaluation this soon after start: a fleet starting up (services coming up one after
    # the other) is not an outage to page anyone about.
    alert_startup_grace_seconds: float = Field(default=120, ge=0)
    # JSON list of rules (docs/monitoring.md, "Alert rules"); the defaults cover every kind.
    alert_rules: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_RULES))

    # ------------------------------------------------------------------ dashboard, status page
    # How long the dashboard waits for job-processor before saying it is unreachable.
    upstream_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    status_incident_days: int = Field(default=30, ge=1, le=90)
    # The public status page is built at most this often per replica (0: every request).
    status_cache_seconds: float = Field(default=10, ge=0, le=300)

    @field_validator("watched_services")
    @classmethod
    def _known_services(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"WATCHED_SERVICES names services not in the fleet: {unknown}")
        return value

    @model_validator(mode="after")
    def _unique_rules(self) -> Self:
        names = [rule.name for rule in self.alert_rules]
        if len(names) != len(set(names)):
            raise ValueError("ALERT_RULES: every rule needs its own name")
        return self

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(
            stream=self.event_stream,
            group=self.consumer_group,
            batch_size=self.consumer_batch_size,
            block_ms=self.consumer_block_ms,
            claim_idle_seconds=self.consumer_claim_idle_seconds,
            max_deliveries=self.consumer_max_deliveries,
        )

    def fleet_urls(self) -> dict[str, str]:
        """The watched services and where to reach them, in fleet-table order."""
        urls = {s.name: str(getattr(self, s.url_setting)).rstrip("/") for s in _FLEET_ORDER}
        return {name: url for name, url in urls.items() if name in self.watched_services}


_FLEET_ORDER = [fleet_service(name) for name in SERVICE_NAMES]
