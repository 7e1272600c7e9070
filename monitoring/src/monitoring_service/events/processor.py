"""Processing one stream entry for monitoring: the registry's service events update the
external services; the other families of the platform's events concern monitoring not and are
ignored; anything else (an unknown family, an unknown version, an invalid payload, a malformed
entry) is dead-lettered with the reason, and the consumer goes on."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope
from fedimpute_shared.events import Event, ServiceDeactivated, ServiceHealthChanged
from fedimpute_shared.streams import Entry, Malformed, describe, parse_entry, readable_fields
from monitoring_service.external import service as external
from monitoring_service.models import DeadLetter, ProcessedEvent

__all__ = ["IGNORED_FAMILIES", "MonitoringProcessor", "Outcome"]

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # processed before (a redelivery): nothing done again
    IGNORED = "ignored"  # a family of events monitoring does not watch
    DEAD_LETTERED = "dead_lettered"


Handler = Callable[[AsyncSession, Any], Awaitable[None]]
HANDLERS: dict[str, tuple[type[Event], Handler]] = {
    ServiceHealthChanged.event_type: (ServiceHealthChanged, external.apply_health_changed),
    ServiceDeactivated.event_type: (ServiceDeactivated, external.apply_deactivated),
}
# Families of the platform's events that are none of monitoring's business (jobs come from
# job-processor's API for the dashboard; alerts are monitoring's own).
IGNORED_FAMILIES = ("user.", "file.", "job.", "alert.")


async def record_processed(session: AsyncSession, event_id: uuid.UUID, event_type: str) -> bool:
    """Record ``event_id`` as processed in the caller's transaction; False if it already was."""
    stmt = (
        insert(ProcessedEvent)
        .values(event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(ProcessedEvent.event_id)
    )
    return (await session.scalar(stmt)) is not None


class MonitoringProcessor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, max_event_bytes: int
    ) -> None:
        self._sessionmaker = sessionmaker
        self._max_event_bytes = max_event_bytes

    async def process(self, stream_id: str, fields: dict[bytes, bytes]) -> Outcome:
        """Process one entry. Raises on a transient fault (the entry is then retried)."""
        try:
            entry = parse_entry(stream_id, fields, self._max_event_bytes)
        except Malformed as exc:
            return await self.dead_letter(stream_id, fields, f"malformed entry: {exc}")
        known = HANDLERS.get(entry.event_type)
        if known is None and entry.event_type.startswith(IGNORED_FAMILIES):
            return Outcome.IGNORED
        if known is None or entry.version != known[0].version:
            reason = f"unknown event type {entry.event_type!r} version {entry.version}"
            return await self.dead_letter(stream_id, fields, reason, entry=entry)
        model, handler = known
        try:
            event = model.model_validate(entry.payload)
        except ValidationError as exc:
            return await self.dead_letter(stream_id, fields, describe(exc), entry=entry)
        async with session_scope(self._sessionmaker) as session:
            if not await record_processed(session, event.event_id, entry.event_type):
                return Outcome.DUPLICATE
            await handler(session, event)
        return Outcome.PROCESSED

    async def dead_letter(
        self,
        stream_id: str,
        fields: dict[bytes, bytes],
        reason: str,
        *,
        entry: Entry | None = None,
        deliveries: int = 1,
    ) -> Outcome:
        """Keep the entry with ``reason`` for admins (the consumer then moves on)."""
        readable = readable_fields(fields)
        async with session_scope(self._sessionmaker) as session:
            session.add(
                DeadLetter(
                    stream_id=stream_id,
                    event_id=str(entry.event_id) if entry else _short(readable.get("event_id")),
                    event_type=entry.event_type if entry else _short(readable.get("event_type")),
                    reason=reason[:2000],
                    fields=readable,
                    deliveries=deliveries,
                )
            )
        logger.warning(
            "event dead-lettered", extra={"stream_id": stream_id, "reason": reason[:300]}
        )
        return Outcome.DEAD_LETTERED


def _short(value: str | None) -> str | None:
    return value[:100] if value is not None else None
