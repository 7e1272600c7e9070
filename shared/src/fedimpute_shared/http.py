"""Outbound HTTP: one factory for every ``httpx.AsyncClient`` the platform creates.

Clients get explicit timeouts (never httpx's "forever" or a silent default), carry the current
``X-Request-ID`` on every request, and, for calls to other services, a service token obtained
from user-service and cached until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from fedimpute_shared.context import REQUEST_ID_HEADER, current_request_id

__all__ = [
    "DEFAULT_TIMEOUT",
    "SERVICE_TOKEN_PATH",
    "ServiceTokenAuth",
    "ServiceTokenProvider",
    "create_http_client",
]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
SERVICE_TOKEN_PATH = "/internal/service-tokens"
# Renew a service token this many seconds before it expires, so an in-flight call never
# carries a token that expires on the way.
_RENEW_MARGIN_SECONDS = 30


async def _add_request_id(request: httpx.Request) -> None:
    if REQUEST_ID_HEADER not in request.headers and (rid := current_request_id()):
        request.headers[REQUEST_ID_HEADER] = rid


def create_http_client(
    *,
    base_url: str = "",
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    auth: httpx.Auth | None = None,
    follow_redirects: bool = False,
    limits: httpx.Limits | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` with explicit timeouts and request-id propagation."""
    hooks = kwargs.pop("event_hooks", {})
    hooks.setdefault("request", []).insert(0, _add_request_id)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        auth=auth,
        follow_redirects=follow_redirects,
        limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        event_hooks=hooks,
        **kwargs,
    )


@dataclass
class _CachedToken:
    value: str
    expires_at: float


class ServiceTokenProvider:
    """Client-credentials service tokens from user-service, one cached token per audience.

    Contract (user-service implements it): ``POST {user_service_url}/internal/service-tokens``
    with JSON ``{"client_id", "client_secret", "audience"}`` answers
    ``{"access_token", "token_type": "Bearer", "expires_in"}``.
    """

    def __init__(
        self,
        user_service_url: str,
        client_id: str,
        client_secret: SecretStr,
        client: httpx.AsyncClient,
    ) -> None:
        self._url = user_service_url.rstrip("/") + SERVICE_TOKEN_PATH
        self._client_id = client_id
        self._secret = client_secret
        self._client = client
        self._cache: dict[str, _CachedToken] = {}
        self._lock = asyncio.Lock()

    async def token_for(self, audience: str) -> str:
        """A valid token addressed to ``audience`` (fetched only when missing or near expiry)."""
        cached = self._cache.get(audience)
        if cached and cached.expires_at - _RENEW_MARGIN_SECONDS > time.monotonic():
            return cached.value
        async with self._lock:
            cached = self._cache.get(audience)
            if cached and cached.expires_at - _RENEW_MARGIN_SECONDS > time.monotonic():
                return cached.value
            self._cache[audience] = await self._fetch(audience)
            return self._cache[audience].value

    async def _fetch(self, audience: str) -> _CachedToken:
        response = await self._client.post(
            self._url,
            json={
                "client_id": self._client_id,
                "client_secret": self._secret.get_secret_value(),
                "audience": audience,
            },
        )
        response.raise_for_status()
        body = response.json()
        return _CachedToken(body["access_token"], time.monotonic() + float(body["expires_in"]))

    def invalidate(self, audience: str) -> None:
        self._cache.pop(audience, None)


class ServiceTokenAuth(httpx.Auth):
    """httpx auth flow: adds a service token for ``audience``; on a 401, renews it once."""

    def __init__(self, provider: ServiceTokenProvider, audience: str) -> None:
        self.provider = provider
        self.audience = audience

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = "Bearer " + await self.provider.token_for(self.audience)
        response = yield request
        if response.status_code == 401:
            self.provider.invalidate(self.audience)
            request.headers["Authorization"] = "Bearer " + await self.provider.token_for(
                self.audience
            )
            yield request
