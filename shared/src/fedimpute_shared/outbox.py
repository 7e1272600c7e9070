"""The outbox relay: publishes a service's outbox rows to the Redis stream of domain events.

Every service that writes events (:func:`fedimpute_shared.events.add_to_outbox`) runs one relay;
the app factory starts it when the service passes its outbox model (``outbox=OutboxEvent``) and
``REDIS_URL`` is set. Each round, under the advisory lock ``outbox-relay`` (one replica relays at
a time, which is what keeps the order):

1. reads the unpublished rows in ``seq`` order, a batch at a time;
2. appends them to the stream with one ``MULTI``/``XADD``.../``EXEC`` (``MAXLEN ~`` bounds the
   stream's length, so Redis memory stays bounded);
3. marks them published in the same database transaction that read them, after Redis accepted
   them. A crash or a Redis error between 2 and 3 leaves them unpublished: they are sent again
   (at least once; consumers deduplicate on ``event_id``), never lost;
4. now and then deletes published rows older than ``OUTBOX_RETENTION_HOURS``.

Redis going away is expected (restarts, fail-overs): the relay logs it once, keeps the rows,
and carries on from where it stopped when Redis is back. Payloads are never logged (some events
carry one-time tokens).

The stream entry format (what consumers read, without our Python models) is documented in
``docs/architecture.md`` ("The event stream"): string fields ``event_id``, ``event_type``,
``version``, ``producer``, ``occurred_at`` and ``payload`` (the event as a JSON object).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.clock import current_clock
from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import Event, OutboxEvent

__all__ = [
    "RELAY_TASK",
    "OutboxRelay",
    "RelayMetrics",
    "RelayOptions",
    "event_fields",
    "stream_fields",
]

logger = logging.getLogger(__name__)

RELAY_TASK = "outbox-relay"
"""The background task's name (and so its advisory lock's)."""

_PRUNE_EVERY_SECONDS = 600.0
_PRUNE_BATCH = 5000


@dataclass(frozen=True)
class RelayOptions:
    stream: str
    max_length: int  # approximate (MAXLEN ~)
    batch_size: int
    retention: timedelta


class RelayMetrics:
    """The relay's metrics (registered once per app)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.published = Counter(
            "outbox_events_published_total",
            "Outbox events appended to the event stream.",
            registry=registry,
        )
        self.failures = Counter(
            "outbox_relay_redis_failures_total",
            "Relay rounds that could not reach Redis (the events stay in the outbox).",
            registry=registry,
        )
        self.pending = Gauge(
            "outbox_events_pending",
            "Unpublished outbox events seen at the last relay round.",
            registry=registry,
        )


def stream_fields(row: OutboxEvent) -> dict[str, str]:
    """The stream entry for one outbox row: flat string fields any client can read."""
    return _entry(str(row.id), row.event_type, row.version, row.payload)


def event_fields(event: Event) -> dict[str, str]:
    """The entry the relay writes for ``event``, for tools and tests that append events to the
    stream themselves (a benchmark, a consumer's tests)."""
    return _entry(str(event.event_id), event.event_type, event.version, event.envelope())


def _entry(event_id: str, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, str]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "version": str(version),
        "producer": str(payload.get("producer", "")),
        "occurred_at": str(payload.get("occurred_at", "")),
        "payload": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
    }


class OutboxRelay:
    """Moves one service's outbox rows to the event stream (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        model: type[OutboxEvent],
        options: RelayOptions,
        *,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._model = model
        self._options = options
        self._metrics = metrics or RelayMetrics(None)
        self._redis_down = False
        self._last_prune: float | None = None

    async def relay_once(self) -> int:
        """Publish every pending row, oldest first; returns how many were published.

        Redis errors end the round quietly (logged once until Redis is back); the rows wait.
        """
        published = 0
        try:
            while True:
                count, more = await self._relay_batch()
                published += count
                if not more:
                    break
        except (RedisError, OSError) as exc:
            self._metrics.failures.inc()
            if not self._redis_down:
                self._redis_down = True
                logger.warning(
                    "event stream unreachable (%s): events wait in the outbox",
                    type(exc).__name__,
                )
        else:
            if self._redis_down:
                self._redis_down = False
                logger.info("event stream reachable again; relaying resumed")
        if self._prune_due():
            await self.prune()
        return published

    async def _relay_batch(self) -> tuple[int, bool]:
        model = self._model
        async with session_scope(self._sessionmaker) as session:
            rows = list(
                (
                    await session.scalars(
                        select(model)
                        .where(model.published_at.is_(None))
                        .order_by(model.seq)
                        .limit(self._options.batch_size)
                    )
                ).all()
            )
            self._metrics.pending.set(len(rows))
            if not rows:
                return 0, False
            await self._publish(rows)
            await session.execute(
                update(model)
                .where(model.id.in_([row.id for row in rows]))
                .values(published_at=utcnow())
            )
        self._metrics.published.inc(len(rows))
        logger.debug("relayed %d events up to seq %d", len(rows), rows[-1].seq)
        return len(rows), len(rows) == self._options.batch_size

    async def _publish(self, rows: list[OutboxEvent]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for row in rows:
                pipe.xadd(
                    self._options.stream,
                    stream_fields(row),  # type: ignore[arg-type]
                    maxlen=self._options.max_length,
                    approximate=True,
                )
            await pipe.execute()

    def _prune_due(self) -> bool:
        now = current_clock().monotonic()
        if self._last_prune is not None and now - self._last_prune < _PRUNE_EVERY_SECONDS:
            return False
        self._last_prune = now
        return True

    async def prune(self) -> int:
        """Delete published rows older than the retention; returns how many."""
        model = self._model
        cutoff = utcnow() - self._options.retention
        total = 0
        while True:
            async with session_scope(self._sessionmaker) as session:
                oldest = (
                    select(model.id)
                    .where(model.published_at.is_not(None), model.published_at < cutoff)
                    .limit(_PRUNE_BATCH)
                )
                result = await session.execute(delete(model).where(model.id.in_(oldest)))
            deleted = int(getattr(result, "rowcount", 0) or 0)
            total += deleted
            if deleted < _PRUNE_BATCH:
                break
        if total:
            logger.info("pruned %d published outbox events", total)
        return total

    async def pending(self) -> int:
        """How many rows wait to be published (for tests and operators)."""
        model = self._model
        async with self._sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.published_at.is_(None))
            )
        return int(count or 0)
