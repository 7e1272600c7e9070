"""HTTP clients to the services monitoring asks with its service token: the registry (external
services' health) and job-processor (the dashboard's job figures)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import httpx

from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from monitoring_service.config import Settings


class ScrapeToken(httpx.Auth):
    """A service token addressed to the scraped service, when one can be had: the gateway's
    /metrics answers only such a token (or its allowlisted networks). Without user-service the
    scrape still goes, tokenless, and the others' /metrics still answer."""

    def __init__(self, provider: ServiceTokenProvider, audience: str) -> None:
        self.provider = provider
        self.audience = audience

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        try:
            token = await self.provider.token_for(self.audience)
        except (httpx.HTTPError, KeyError, ValueError):
            token = None
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


@dataclass
class Clients:
    registry: httpx.AsyncClient
    job_processor: httpx.AsyncClient
    provider: ServiceTokenProvider

    def scrape_auth(self, service: str) -> httpx.Auth:
        return ScrapeToken(self.provider, service)

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
            provider=provider,
        )

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.job_processor.aclose()
