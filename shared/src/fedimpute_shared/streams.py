"""Reading the event stream: a Redis Streams consumer-group loop, and a bounded reader of one
entry (the format of docs/architecture.md, "The event stream"). Every service that listens to
events (notification, monitoring) runs a :class:`StreamConsumer` with its own group and its own
:class:`EntryProcessor`; the processor decides what an entry means, the consumer how it is read.

- New entries: ``XREADGROUP ... >``; each is processed, then acknowledged (``XACK``).
- An entry whose processing raised (Postgres or another service unreachable, a bug) stays
  pending; once idle for ``claim_idle_seconds`` it is claimed again (by this replica or
  another: a replica that died leaves its entries to the others), and after
  ``max_deliveries`` attempts it is dead-lettered with its last error.
- Entries that can never be processed (malformed, unknown, invalid) are dead-lettered by the
  processor at once and the consumer goes on with the next one.
- Redis going away is logged once; the loop waits and resumes from the group's position when
  Redis is back (a Redis that lost its data gets the group created again from its start).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, cast

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from fedimpute_shared.clock import current_clock
from fedimpute_shared.tasks import stopping

__all__ = [
    "ConsumerMetrics",
    "ConsumerOptions",
    "Entry",
    "EntryProcessor",
    "Malformed",
    "StreamConsumer",
    "consumer_name",
    "describe",
    "parse_entry",
    "readable_fields",
]

logger = logging.getLogger(__name__)

_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_Streams = list[tuple[bytes, _Entries]]
_KEPT_ERRORS = 1000
_FORGET_CONSUMERS_AFTER_MS = 3_600_000
_MAX_DEPTH = 32
_KEPT_CHARS = 4096  # of each field, in a dead letter


# ---------------------------------------------------------------------------- one entry
class Malformed(ValueError):
    """An entry that can never be processed; the message says why (no payload values)."""


@dataclass(frozen=True)
class Entry:
    stream_id: str
    event_id: uuid.UUID
    event_type: str
    version: int
    payload: dict[str, Any]


def readable_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """An entry's fields as text, each cut to a bounded length (for dead letters)."""
    return {
        key.decode("utf-8", "replace")[:100]: value.decode("utf-8", "replace")[:_KEPT_CHARS]
        for key, value in list(fields.items())[:20]
    }


def _depth(value: Any, level: int = 1) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _field(fields: dict[bytes, bytes], name: str) -> str:
    raw = fields.get(name.encode())
    if raw is None:
        raise Malformed(f"the entry has no {name!r} field")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"the {name!r} field is not UTF-8") from None


def _payload(fields: dict[bytes, bytes], max_bytes: int) -> dict[str, Any]:
    raw = fields.get(b"payload")
    if raw is None:
        raise Malformed("the entry has no 'payload' field")
    if len(raw) > max_bytes:
        raise Malformed(f"the payload has {len(raw)} bytes, more than the {max_bytes} allowed")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise Malformed("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise Malformed("the payload is not a JSON object")
    if _depth(payload) > _MAX_DEPTH:
        raise Malformed(f"the payload nests deeper than {_MAX_DEPTH} levels")
    return payload


def parse_entry(stream_id: str, fields: dict[bytes, bytes], max_bytes: int) -> Entry:
    """The entry's envelope and payload, checked against each other."""
    payload = _payload(fields, max_bytes)
    event_type = _field(fields, "event_type")
    try:
        event_id = uuid.UUID(_field(fields, "event_id"))
        version = int(_field(fields, "version"))
    except ValueError:
        raise Malformed("event_id must be a UUID and version an integer") from None
    if payload.get("event_type") != event_type or str(payload.get("event_id")) != str(event_id):
        raise Malformed("the payload's event_type or event_id differs from the entry's")
    if payload.get("version", version) != version:
        raise Malformed("the payload's version differs from the entry's")
    return Entry(stream_id, event_id, event_type, version, payload)


def describe(error: ValidationError) -> str:
    """A validation error as field names and messages, never the values (they may be secret)."""
    problems = [
        f"{'.'.join(str(p) for p in item['loc']) or 'payload'}: {item['msg']}"
        for item in error.errors(include_input=False)
    ]
    return "the payload does not match the event's contract: " + "; ".join(problems[:10])


# ---------------------------------------------------------------------------- the consumer


def consumer_name() -> str:
    """Unique per process: a restarted replica's old entries are claimed like a dead one's."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ConsumerOptions:
    """Where and how a consumer reads (each service takes them from its settings)."""

    stream: str
    group: str
    batch_size: int = 100
    block_ms: int = 2000
    # An entry left unacknowledged this long (its consumer died, or its processing failed) is
    # claimed again; after max_deliveries attempts it is dead-lettered.
    claim_idle_seconds: float = 30
    max_deliveries: int = 5


class ConsumerMetrics:
    """A consumer's counters, named after its service (``<prefix>_events_total``...)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.events = Counter(
            f"{prefix}_events_total",
            "Stream entries by outcome (processed, duplicate, ignored, dead_lettered, retried).",
            ["outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            f"{prefix}_consumer_lag",
            f"Stream entries not yet delivered to the {prefix} consumer group.",
            registry=registry,
        )
        self.pending = Gauge(
            f"{prefix}_consumer_pending",
            "Entries delivered to the group but not yet acknowledged.",
            registry=registry,
        )


class EntryProcessor(Protocol):
    """What a service does with one entry. Both return an outcome label (``processed``,
    ``duplicate``, ``ignored``, ``dead_lettered``...). ``process`` raises on a transient fault:
    the entry then stays pending and is tried again later."""

    async def process(self, stream_id: str, fields: dict[bytes, bytes]) -> str: ...

    async def dead_letter(
        self, stream_id: str, fields: dict[bytes, bytes], reason: str, *, deliveries: int
    ) -> str: ...


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        processor: EntryProcessor,
        options: ConsumerOptions,
        metrics: ConsumerMetrics,
        *,
        name: str | None = None,
    ) -> None:
        self._redis = redis
        self._processor = processor
        self._metrics = metrics
        self.stream = options.stream
        self.group = options.group
        self.name = name or consumer_name()
        self._batch = options.batch_size
        self._block_ms = options.block_ms
        self._idle_ms = int(options.claim_idle_seconds * 1000)
        self._max_deliveries = options.max_deliveries
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
        # stopping(): a cancellation swallowed by a read's timeout still ends the loop
        while not self._stopping.is_set() and not stopping():
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
                if stopping():
                    break
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
                self._metrics.lag.set(group.get("lag") or 0)
                self._metrics.pending.set(group.get("pending") or 0)
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
