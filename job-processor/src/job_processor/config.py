"""job-processor settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.fleet import fleet_service


class Settings(ServiceSettings):
    service_name: str = "job-processor"
    port: int = fleet_service("job-processor").port
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/job_processing_db"

    service_registry_url: str = fleet_service("service-registry").local_url
    file_manager_url: str = fleet_service("file-manager").local_url
    # Where a remote node fetches an input by its signed link: file-manager's public /files, as
    # the node can reach it (the gateway's /api/files); the link is {this}/download/{token}.
    input_link_base_url: str = fleet_service("api-gateway").local_url + "/api/files"
    # Imputation services on loopback/private addresses (the development sandbox only).
    allow_private_urls: bool = False

    # Encrypts each Cloudgene job's result password at rest (AES-256-GCM under its SHA-256).
    result_password_key: SecretStr = SecretStr("dev-result-password-key-change-me")

    # ------------------------------------------------------------------ quotas
    # Unfinished jobs a user may have at once (Michigan's own rule is 2), and jobs per calendar
    # month (UTC); per-role overrides as JSON, e.g. {"admin": 10}.
    max_active_jobs: int = Field(default=2, ge=1)
    max_jobs_per_month: int = Field(default=100, ge=1)
    max_active_jobs_by_role: dict[str, int] = Field(default_factory=dict)
    max_jobs_per_month_by_role: dict[str, int] = Field(default_factory=dict)
    max_inputs_per_job: int = Field(default=30, ge=1, le=200)
    idempotency_key_hours: float = Field(default=24, gt=0)

    # ------------------------------------------------------------------ workers
    workers_enabled: bool = True  # tests switch the workers off and drive them directly
    worker_interval_seconds: float = Field(default=1.0, gt=0)
    worker_batch_size: int = Field(default=20, ge=1, le=1000)
    # A claimed job whose worker vanished (a crash) is picked up again after this.
    lease_seconds: float = Field(default=300, gt=0)
    submit_max_attempts: int = Field(default=8, ge=1)
    submit_retry_seconds: float = Field(default=30, gt=0)
    # Polling: fast right after submission, then backing off while nothing changes, capped.
    poll_initial_seconds: float = Field(default=5, gt=0)
    poll_max_seconds: float = Field(default=300, gt=0)
    poll_backoff_factor: float = Field(default=1.5, ge=1)
    max_concurrent_per_service: int = Field(default=8, ge=1)
    # Circuit breaker per service: this many transient failures in a row open it; its jobs then
    # wait (paused, with a note) this long before the service is tried again.
    breaker_failures: int = Field(default=3, ge=1)
    breaker_pause_seconds: float = Field(default=60, gt=0)
    # A job running longer than this fails with a message saying so.
    max_run_hours: float = Field(default=72, gt=0)
    remote_timeout_seconds: float = Field(default=30, gt=0)
    # The registry's service record and a user's credentials are reused this long by the
    # workers (one lookup per service / per owner and service instead of one per job); 0 = off.
    upstream_cache_seconds: float = Field(default=5, ge=0)
    # A poll round waits at most this long: polls of a slow (hanging) service still running
    # then finish in the background, holding their leases, and the next round starts, so one
    # service's remote timeout does not hold back every other service's polling.
    poll_round_seconds: float = Field(default=10, gt=0)
    download_timeout_seconds: float = Field(default=600, gt=0)

    # ------------------------------------------------------------------ scheduled jobs
    # How often each replica looks for due schedules (each occurrence is fired once overall).
    schedule_interval_seconds: float = Field(default=30, gt=0)
    schedule_batch_size: int = Field(default=20, ge=1, le=1000)
    # The shortest gap a cron expression may give between two runs (no job every minute).
    schedule_min_interval_seconds: float = Field(default=3600, ge=60)
    # When our own upstreams are down at firing time, the occurrence is tried again after this.
    schedule_retry_seconds: float = Field(default=60, gt=0)
