"""job-processor settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.fleet import fleet_service


class Settings(ServiceSettings):
    service_name: str = "job-processor"
    port: int = fleet_service("job-processor").port
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/job_processing_db"

    service_registry_url: str = fleet_service("service-registry").local_url
    file_manager_url: str = fleet_service("file-manager").local_url
    # Imputation services on loopback/private addresses (the development sandbox only).
    allow_private_urls: bool = False
