"""Processing one stream entry: parse, look up, validate, then record and dispatch in one
transaction; entries that can never be processed are dead-lettered with the reason."""

from __future__ import annotations

import logging
from enum import StrEnum

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope
from fedimpute_shared.streams import Entry, Malformed, describe, parse_entry, readable_fields
from notification_service.events import repository
from notification_service.events.catalog import IGNORED, spec_for
from notification_service.events.dispatch import Dispatcher
from notification_service.live.broker import Broker
from notification_service.models import DeadLetter

__all__ = ["EventProcessor", "Outcome"]

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # processed before (a redelivery): nothing done again
    IGNORED = "ignored"  # a type that concerns no one here
    DEAD_LETTERED = "dead_lettered"


class EventProcessor:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        broker: Broker | None,
        *,
        max_event_bytes: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dispatcher = dispatcher
        self._broker = broker
        self._max_event_bytes = max_event_bytes

    async def process(self, stream_id: str, fields: dict[bytes, bytes]) -> Outcome:
        """Process one entry. Raises on a transient fault (the entry is then retried)."""
        try:
            entry = parse_entry(stream_id, fields, self._max_event_bytes)
        except Malformed as exc:
            return await self.dead_letter(stream_id, fields, f"malformed entry: {exc}")
        if entry.event_type in IGNORED:
            return Outcome.IGNORED
        spec = spec_for(entry.event_type)
        if spec is None or entry.version not in spec.versions:
            reason = f"unknown event type {entry.event_type!r} version {entry.version}"
            return await self.dead_letter(stream_id, fields, reason, entry)
        try:
            event = spec.model.model_validate(entry.payload)
        except ValidationError as exc:
            return await self.dead_letter(stream_id, fields, describe(exc), entry)
        async with session_scope(self._sessionmaker) as session:
            if not await repository.record_processed(session, event.event_id, entry.event_type):
                return Outcome.DUPLICATE
            pushes = await self._dispatcher.dispatch(session, spec, event)
        if self._broker is not None:
            await self._broker.publish_all(pushes)
        return Outcome.PROCESSED

    async def dead_letter(
        self,
        stream_id: str,
        fields: dict[bytes, bytes],
        reason: str,
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
            "event dead-lettered",
            extra={"stream_id": stream_id, "reason": reason[:300]},
        )
        return Outcome.DEAD_LETTERED


def _short(value: str | None) -> str | None:
    return value[:100] if value is not None else None
