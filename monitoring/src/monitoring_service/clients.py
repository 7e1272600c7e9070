"""HTTP clients to the services monitoring asks with its service token: the registry (external
services' health) and job-processor (the dashboard's job figures)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from monitoring_service.config import Settings


@dataclass
class Clients:
    registry: httpx.AsyncClient
    job_processor: httpx.AsyncClient

    @classmethod
    def open(cls, settings: Settings, http: httpx.AsyncClient) -> Clients:
        provider = ServiceTokenProvider(
            settings.user_service_url, settings.service_name, settings.service_client_secret, http
        )
        timeout = settings.upstream_timeout_seconds
        return cls(
            registry=create_http_client(
                base_url=settings.service_registry_url,
                auth=ServiceTokenAuth(provider, "service-registry"),
                timeout=timeout,
            ),
            job_processor=create_http_client(
                base_url=settings.job_processor_url,
                auth=ServiceTokenAuth(provider, "job-processor"),
                timeout=timeout,
            ),
        )

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.job_processor.aclose()
