"""Clients of the other services: the registry (services, panels, health), file-manager (a user's
inputs, results stored on their behalf) and user-service's vault (a user's credentials).

Each call uses a service token addressed to the callee. A 404 is an answer (``None``); anything
else unexpected raises :class:`UpstreamError`, which the API turns into a 502/503 and the
workers treat as transient.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from job_processor.config import Settings


class UpstreamError(Exception):
    """Another FedImpute service did not answer as expected (down, 5xx, malformed)."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.detail = detail


def _json(service: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(service, "answered with malformed JSON") from None


class _Client:
    name = ""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _get(self, path: str, **params: Any) -> Any | None:
        try:
            response = await self.http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise UpstreamError(self.name, f"unreachable ({type(exc).__name__})") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UpstreamError(self.name, f"answered {response.status_code}")
        return _json(self.name, response)

    async def aclose(self) -> None:
        await self.http.aclose()


class RegistryClient(_Client):
    name = "service-registry"

    async def service(self, id_or_slug: str | uuid.UUID) -> dict[str, Any] | None:
        """The service with its panels (``ServiceDetail``), deleted ones answering None."""
        # One path segment whatever the caller wrote: a reference such as "x/health" (slashes
        # are allowed in references) must not reach another registry route.
        found = await self._get(f"/internal/services/{quote(str(id_or_slug), safe='')}")
        return found if isinstance(found, dict) else None

    async def active_services(self) -> list[dict[str, Any]]:
        found = await self._get("/internal/services")
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []

    async def health(self, service_id: uuid.UUID) -> dict[str, Any] | None:
        found = await self._get(f"/internal/services/{service_id}/health")
        return found if isinstance(found, dict) else None


class FileClient(_Client):
    name = "file-manager"

    async def file(self, file_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
        """The file's metadata if it exists and is ``user_id``'s (None otherwise)."""
        found = await self._get(f"/internal/files/{file_id}", user_id=str(user_id))
        return found if isinstance(found, dict) else None

    @asynccontextmanager
    async def content(
        self, file_id: uuid.UUID, user_id: uuid.UUID
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The file's bytes, streamed (never whole in memory)."""
        request = self.http.build_request(
            "GET", f"/internal/files/{file_id}/content", params={"user_id": str(user_id)}
        )
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamError(self.name, f"unreachable ({type(exc).__name__})") from exc
        try:
            if response.status_code != 200:
                raise UpstreamError(self.name, f"input {file_id}: answered {response.status_code}")
            yield response.aiter_bytes()
        finally:
            await response.aclose()

    async def link(self, file_id: uuid.UUID, user_id: uuid.UUID, seconds: int) -> str:
        """A signed download token of the user's file (a remote node fetches the input)."""
        try:
            response = await self.http.post(
                f"/internal/files/{file_id}/links",
                params={"user_id": str(user_id)},
                json={"expires_in_seconds": seconds},
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(self.name, f"unreachable ({type(exc).__name__})") from exc
        if response.status_code != 201:
            raise UpstreamError(self.name, f"link to {file_id}: answered {response.status_code}")
        body = _json(self.name, response)
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            raise UpstreamError(self.name, "made a link but answered without its token")
        return str(body["token"])

    async def store_result(
        self,
        user_id: uuid.UUID,
        job_id: uuid.UUID,
        filename: str,
        body: AsyncIterator[bytes],
        kind: str = "result",
    ) -> dict[str, Any]:
        """Stream ``body`` into a new result file of ``user_id``'s; its metadata back."""
        try:
            response = await self.http.post(
                "/internal/files",
                params={
                    "user_id": str(user_id),
                    "job_id": str(job_id),
                    "filename": filename,
                    "kind": kind,
                },
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(self.name, f"unreachable ({type(exc).__name__})") from exc
        if response.status_code != 201:
            raise UpstreamError(self.name, f"storing {filename}: answered {response.status_code}")
        stored = _json(self.name, response)
        if not isinstance(stored, dict) or "id" not in stored:
            raise UpstreamError(self.name, "stored a result but answered without its id")
        return stored


class VaultClient(_Client):
    name = "user-service"

    async def credentials(self, user_id: uuid.UUID, service_id: uuid.UUID) -> dict[str, Any] | None:
        """The user's decrypted credential for the service (None: nothing stored)."""
        found = await self._get(f"/internal/users/{user_id}/service-credentials/{service_id}")
        return found if isinstance(found, dict) else None

    async def report_verification(
        self, user_id: uuid.UUID, service_id: uuid.UUID, ok: bool
    ) -> bool:
        """Record whether the credential worked against its service (False: none is stored)."""
        path = f"/internal/users/{user_id}/service-credentials/{service_id}/verification"
        try:
            response = await self.http.post(path, json={"ok": ok})
        except httpx.HTTPError as exc:
            raise UpstreamError(self.name, f"unreachable ({type(exc).__name__})") from exc
        if response.status_code == 404:
            return False
        if response.status_code != 204:
            raise UpstreamError(self.name, f"answered {response.status_code}")
        return True


class Upstreams:
    """The three clients, built once per app on one token provider."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        provider = ServiceTokenProvider(
            settings.user_service_url, settings.service_name, settings.service_client_secret, http
        )
        timeout = httpx.Timeout(settings.remote_timeout_seconds, connect=5)
        self.registry = RegistryClient(
            create_http_client(
                base_url=settings.service_registry_url,
                auth=ServiceTokenAuth(provider, "service-registry"),
                timeout=timeout,
            )
        )
        self.files = FileClient(
            create_http_client(
                base_url=settings.file_manager_url,
                auth=ServiceTokenAuth(provider, "file-manager"),
                # Results stream for as long as they are large; reads may pause between chunks.
                timeout=httpx.Timeout(settings.download_timeout_seconds, connect=5),
            )
        )
        self.vault = VaultClient(
            create_http_client(
                base_url=settings.user_service_url,
                auth=ServiceTokenAuth(provider, "user-service"),
                timeout=timeout,
            )
        )

    async def aclose(self) -> None:
        for client in (self.registry, self.files, self.vault):
            await client.aclose()
