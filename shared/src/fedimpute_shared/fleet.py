"""The fleet table: every FedImpute service's name, package, port, database and URL variable.

This is the one place the fleet is written down. The launcher (``scripts/fleet.py``), the
gateway's upstreams, user-service's list of service clients, the deployment test and the
Postgres init script (checked by that test) all read it, so a new service is added here once.
A service whose package is not installed yet (a README-only folder) is simply not started.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATABASES",
    "FLEET",
    "SERVICE_NAMES",
    "FleetService",
    "fleet_service",
]


@dataclass(frozen=True)
class FleetService:
    """One service of the fleet."""

    name: str  # the folder, the client id of its service tokens, a token audience
    package: str  # the import name: ``python -m <package> serve``
    port: int  # its port in development and in the containers
    database: str | None  # its own Postgres database (None: it has none)
    env_name: str  # other services find it at ``<env_name>_URL``

    @property
    def url_env(self) -> str:
        """The environment variable holding this service's URL (``FILE_MANAGER_URL``)."""
        return f"{self.env_name}_URL"

    @property
    def url_setting(self) -> str:
        """The settings field read from :attr:`url_env` (``file_manager_url``)."""
        return self.url_env.lower()

    @property
    def local_url(self) -> str:
        """Where it listens on a developer machine (the settings' default)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def project(self) -> str:
        """Its workspace member (``uv sync --package fedimpute-<name>``)."""
        return f"fedimpute-{self.name}"

    @property
    def migrations_dir(self) -> Path | None:
        """Its Alembic folder, ``<package>/migrations`` (where every service keeps it, so it
        ships with the package); None for a service without a database or not installed.
        Found without importing the package."""
        spec = importlib.util.find_spec(self.package) if self.database else None
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / "migrations"

    @property
    def installed(self) -> bool:
        """Whether its package exists in this environment (built, not only planned)."""
        return importlib.util.find_spec(self.package) is not None


FLEET: tuple[FleetService, ...] = (
    FleetService("api-gateway", "api_gateway", 8000, None, "API_GATEWAY"),
    FleetService("user-service", "user_service", 8001, "user_management_db", "USER_SERVICE"),
    FleetService(
        "service-registry", "service_registry", 8002, "service_registry_db", "SERVICE_REGISTRY"
    ),
    FleetService("job-processor", "job_processor", 8003, "job_processing_db", "JOB_PROCESSOR"),
    FleetService("file-manager", "file_manager", 8004, "file_management_db", "FILE_MANAGER"),
    FleetService("notification", "notification_service", 8005, "notification_db", "NOTIFICATION"),
    FleetService("monitoring", "monitoring_service", 8006, "monitoring_db", "MONITORING"),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in FLEET)
DATABASES: tuple[str, ...] = tuple(s.database for s in FLEET if s.database)


def fleet_service(name: str) -> FleetService:
    """The entry for ``name`` (``KeyError`` for a name that is not in the fleet)."""
    for entry in FLEET:
        if entry.name == name:
            return entry
    raise KeyError(name)
