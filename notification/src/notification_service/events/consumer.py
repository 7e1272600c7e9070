"""The Redis Streams consumer: reads ``fedimpute:events`` through the consumer group
``notification`` (docs/architecture.md, "The event stream").

- New entries: ``XREADGROUP ... >``; each is processed, then acknowledged (``XACK``).
- An entry whose processing raised (Postgres or user-service unreachable, a bug) stays
  pending; once idle for ``CONSUMER_CLAIM_IDLE_SECONDS`` it is claimed again (by this replica
  or another: a replica that died leaves its entries to the others), and after
  ``CONSUMER_MAX_DELIVERIES`` attempts it is dead-lettered with its last error.
- Entries that can never be processed (malformed, unknown, invalid) are dead-lettered at once
  and the consumer goes on with the next one.
- Redis going away is logged once; the loop waits and resumes from the group's position when
  Redis is back (a Redis that lost its data gets the group created again from its start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import OrderedDict
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from fedimpute_shared.clock import current_clock
from notification_service.config import Settings
from notification_service.events.processor import EventProcessor
from notification_service.metrics import NotificationMetrics

__all__ = ["EventConsumer"]

logger = logging.getLogger(__name__)

_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_Streams = list[tuple[bytes, _Entries]]
_KEPT_ERRORS = 1000
_FORGET_CONSUMERS_AFTER_MS = 3_600_000


def consumer_name() -> str:
    """Unique per process: a restarted replica's old entries are claimed like a dead one's."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class EventConsumer:
    def __init__(
        self,
        redis: Redis,
        processor: EventProcessor,
        settings: Settings,
        metrics: NotificationMetrics,
        *,
        name: str | None = None,
    ) -> None:
        self._redis = redis
        self._processor = processor
        self._metrics = metrics
        self.stream = settings.event_stream
        self.group = settings.consumer_group
        self.name = name or consumer_name()
        self._batch = settings.consumer_batch_size
        self._block_ms = settings.consumer_block_ms
        self._idle_ms = int(settings.consumer_claim_idle_seconds * 1000)
        self._max_deliveries = settings.consumer_max_deliveries
        self._stopping = asyncio.Event()
        self._errors: OrderedDict[str, str] = OrderedDict()
        self._last_claim = float("-inf")

    def stop(self) -> None:
        """Ask :meth:`run` to end after the current step."""
        self._stopping.set()

    async def ensure_group(self, start: str = "$") -> None:
        """Create the group (from new entries, or from ``start``) unless it exists."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Consume until stopped, riding out Redis outages."""
        delay, down, ready = 0.5, False, False
        while not self._stopping.is_set():
            try:
                if not ready:
                    await self.ensure_group()
                    ready = True
                await self.step()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("the consumer group is gone (Redis lost its data?): recreating it")
                await self.ensure_group("0")
                continue
            except (RedisError, OSError) as exc:
                if not down:
                    logger.warning("Redis unreachable, waiting: %s", type(exc).__name__)
                    down = True
                await current_clock().sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if down:
                logger.info("Redis is back: consuming from the group's position")
                down, delay = False, 0.5

    async def step(self) -> int:
        """Claim stale entries now and then, then read (and wait a little for) new ones."""
        now = current_clock().monotonic()
        if now - self._last_claim >= self._idle_ms / 2000:
            self._last_claim = now
            await self.claim_stale()
            await self.housekeeping()
        return await self.read_new(self._block_ms)

    async def read_new(self, block_ms: int | None = None) -> int:
        """Process the entries not yet delivered to the group; how many were read."""
        response = cast(
            _Streams,
            await self._redis.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self._batch, block=block_ms
            ),
        )
        count = 0
        for _stream, entries in response or []:
            for stream_id, fields in entries:
                count += 1
                await self._handle(_text(stream_id), fields)
        return count

    async def claim_stale(self) -> int:
        """Take over entries left pending too long; dead-letter those tried too often."""
        pending = await self._redis.xpending_range(
            self.stream, self.group, min="-", max="+", count=self._batch, idle=self._idle_ms
        )
        handled = 0
        for item in pending:
            stream_id, tries = _text(item["message_id"]), int(item["times_delivered"])
            claimed = cast(
                _Entries,
                await self._redis.xclaim(
                    self.stream, self.group, self.name, self._idle_ms, [stream_id]
                ),
            )
            if not claimed:
                continue  # another replica took it first
            _, fields = claimed[0]
            if not fields:  # trimmed from the stream meanwhile
                await self._redis.xack(self.stream, self.group, stream_id)
                continue
            handled += 1
            if tries >= self._max_deliveries:
                await self._give_up(stream_id, fields, tries)
            else:
                await self._handle(stream_id, fields)
        return handled

    async def housekeeping(self) -> None:
        """Publish the group's lag, and forget consumers of replicas long gone."""
        for group in await self._redis.xinfo_groups(self.stream):
            if _text(group["name"]) == self.group:
                self._metrics.consumer_lag.set(group.get("lag") or 0)
                self._metrics.consumer_pending.set(group.get("pending") or 0)
        for consumer in await self._redis.xinfo_consumers(self.stream, self.group):
            name = _text(consumer["name"])
            idle = int(consumer.get("idle") or 0)
            if (
                name != self.name
                and not consumer.get("pending")
                and idle > _FORGET_CONSUMERS_AFTER_MS
            ):
                await self._redis.xgroup_delconsumer(self.stream, self.group, name)

    async def _handle(self, stream_id: str, fields: dict[bytes, bytes]) -> None:
        try:
            outcome = await self._processor.process(stream_id, fields)
        except (RedisError, OSError):
            raise  # Redis itself: the run loop waits for it
        except Exception as exc:
            self._remember(stream_id, f"{type(exc).__name__}: {exc}")
            self._metrics.events.labels("retried").inc()
            logger.warning(
                "event processing failed; it is tried again later",
                extra={"stream_id": stream_id, "error": type(exc).__name__},
                exc_info=True,
            )
            return
        self._errors.pop(stream_id, None)
        self._metrics.events.labels(str(outcome)).inc()
        await self._redis.xack(self.stream, self.group, stream_id)

    async def _give_up(self, stream_id: str, fields: dict[bytes, bytes], tries: int) -> None:
        last = self._errors.pop(stream_id, None)
        reason = f"gave up after {tries} attempts" + (f"; last error: {last}" if last else "")
        outcome = await self._processor.dead_letter(stream_id, fields, reason, deliveries=tries)
        self._metrics.events.labels(str(outcome)).inc()
        await self._redis.xack(self.stream, self.group, stream_id)

    def _remember(self, stream_id: str, error: str) -> None:
        self._errors[stream_id] = error[:500]
        self._errors.move_to_end(stream_id)
        while len(self._errors) > _KEPT_ERRORS:
            self._errors.popitem(last=False)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
