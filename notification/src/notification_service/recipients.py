"""Who the people are: contact details and admins, asked from user-service with a service
token (notification keeps no copy of the user table)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from pydantic import BaseModel

__all__ = ["Contact", "Directory", "DirectoryUnavailable"]


class DirectoryUnavailable(Exception):
    """user-service could not answer; the event is tried again later."""


class Contact(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    is_active: bool


@dataclass
class Directory:
    """user-service's internal user endpoints (``client`` carries the service token)."""

    client: httpx.AsyncClient

    async def contact(self, user_id: uuid.UUID) -> Contact | None:
        """The user's contact details; None for a user that does not exist."""
        response = await self._get(f"/internal/users/{user_id}")
        if response.status_code == 404:
            return None
        return Contact.model_validate(self._json(response))

    async def holders(self, roles: tuple[str, ...]) -> list[Contact]:
        """Active users holding any of ``roles`` platform-wide (admins, service admins)."""
        response = await self._get("/internal/users", params=[("role", r) for r in roles])
        items = self._json(response).get("items")
        if not isinstance(items, list):
            raise DirectoryUnavailable("user-service sent an unexpected body")
        return [Contact.model_validate(item) for item in items]

    async def _get(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            return await self.client.get(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise DirectoryUnavailable(f"user-service unreachable: {type(exc).__name__}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, object]:
        if response.status_code != 200:
            raise DirectoryUnavailable(f"user-service answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise DirectoryUnavailable("user-service sent a body that is not JSON") from exc
        if not isinstance(body, dict):
            raise DirectoryUnavailable("user-service sent an unexpected body")
        return body
