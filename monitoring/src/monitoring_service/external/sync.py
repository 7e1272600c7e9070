"""The periodic sync with the registry: every service's stored health and uptime."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope
from monitoring_service.external import service as external

__all__ = ["RegistrySync", "RegistryUnavailable"]

logger = logging.getLogger(__name__)
_MAX_SERVICES = 10_000


class RegistryUnavailable(Exception):
    """The registry did not answer usably; the last synced state stays."""


class RegistrySync:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], registry: httpx.AsyncClient
    ) -> None:
        self._sessionmaker = sessionmaker
        self._registry = registry

    async def fetch(self) -> list[dict[str, Any]]:
        try:
            response = await self._registry.get("/internal/service-health")
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RegistryUnavailable(f"the registry is unavailable: {type(exc).__name__}") from exc
        if not isinstance(body, list) or len(body) > _MAX_SERVICES:
            raise RegistryUnavailable("the registry answered something that is not a list")
        valid = [item for item in body if _valid(item)]
        if len(valid) != len(body):
            logger.warning("registry sync: %d malformed entries skipped", len(body) - len(valid))
        return valid

    async def sync_once(self) -> int:
        """Fetch and apply; how many services the registry has. Raises RegistryUnavailable."""
        summaries = await self.fetch()
        async with session_scope(self._sessionmaker) as session:
            return await external.apply_sync(session, summaries)


def _valid(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("uptime", {}), dict):
        return False
    if not all(isinstance(item.get(k), str) for k in ("id", "slug", "name", "status")):
        return False
    try:
        uuid.UUID(item["id"])
        if item.get("checked_at") is not None:
            datetime.fromisoformat(str(item["checked_at"]))
    except ValueError:
        return False
    return True
