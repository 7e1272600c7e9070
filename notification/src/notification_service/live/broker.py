"""Live messages across replicas: a short replay log per user, and Redis pub/sub fan-out.

Publishing a message to a user is one Lua script, atomic in Redis: append it to the user's
replay stream ``<channel>:<user id>`` (trimmed to about ``replay_size`` entries, expiring
after ``replay_hours``), whose entry id becomes the message's ``id``, then ``PUBLISH`` it on
the one channel every replica listens to. A replica delivers what it hears to its own
connections of that user; a client that reconnects with the last ``id`` it saw gets the rest
from the replay stream. Pub/sub carries only these ephemeral pushes (DESIGN.md §5): the
durable record is the in-app notification in Postgres.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

__all__ = ["Broker", "Push", "stream_id_key"]

_Entries = list[tuple[bytes, dict[bytes, bytes]]]

logger = logging.getLogger(__name__)

_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. id .. ' ' .. ARGV[2])
return id
"""


@dataclass(frozen=True)
class Push:
    """A message for one user's live connections (its ``id`` is assigned when published)."""

    user_id: uuid.UUID
    message: dict[str, Any]


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A Redis stream id (``1712345678901-0``) as a sortable pair; malformed ids sort first."""
    millis, _, seq = stream_id.partition("-")
    try:
        return int(millis), int(seq or 0)
    except ValueError:
        return -1, -1


class Broker:
    def __init__(self, redis: Redis, channel: str, *, replay_size: int, replay_hours: float):
        self._redis = redis
        self.channel = channel
        self._replay_size = replay_size
        self._ttl = max(1, int(replay_hours * 3600))
        self._script = redis.register_script(_PUBLISH)

    def _key(self, user_id: uuid.UUID) -> str:
        return f"{self.channel}:{user_id}"

    async def publish(self, push: Push) -> str:
        """Log and broadcast one message; returns its id."""
        body = json.dumps(push.message, separators=(",", ":"), ensure_ascii=False)
        raw = await self._script(
            keys=[self._key(push.user_id)],
            args=[self._replay_size, body, self._ttl, self.channel, str(push.user_id)],
        )
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def publish_all(self, pushes: list[Push]) -> None:
        """Best effort after a commit: a push lost to a Redis outage is logged, not retried
        (the notification itself is stored; the client lists it)."""
        for push in pushes:
            try:
                await self.publish(push)
            except RedisError as exc:
                logger.warning("live push not sent: %s", type(exc).__name__)
                return

    async def replay(self, user_id: uuid.UUID, after: str, limit: int) -> list[tuple[str, str]]:
        """The user's messages after id ``after`` (oldest first), as (id, JSON text)."""
        try:
            entries = cast(
                _Entries,
                await self._redis.xrange(self._key(user_id), min=f"({after}", max="+", count=limit),
            )
        except ResponseError:
            return []  # a malformed id from the client: nothing to replay
        return [
            (_text(entry_id), _with_id(_text(entry_id), _text(fields[b"m"])))
            for entry_id, fields in entries
        ]

    async def latest_id(self, user_id: uuid.UUID) -> str:
        """The id of the user's newest message, ``0-0`` when there is none."""
        entries = cast(_Entries, await self._redis.xrevrange(self._key(user_id), count=1))
        return _text(entries[0][0]) if entries else "0-0"

    async def listen(
        self,
        deliver: Callable[[uuid.UUID, str, str], None],
        stop: asyncio.Event,
        on_subscribed: Callable[[Broker], Awaitable[None]] | None = None,
    ) -> None:
        """Hear every replica's pushes until ``stop`` is set; ``deliver(user, id, text)``.

        ``on_subscribed`` runs once subscribed (again after a reconnection): the hub replays
        what its connections missed while nobody listened.
        """
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        try:
            if on_subscribed is not None:
                await on_subscribed(self)
            while not stop.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                user, message_id, text = _text(message["data"]).split(" ", 2)
                deliver(uuid.UUID(user), message_id, _with_id(message_id, text))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


def _with_id(message_id: str, body: str) -> str:
    """The message as the client gets it: its JSON object with ``id`` first (spliced, so a
    message fanned out to thousands of connections is serialised once)."""
    return f'{{"id":"{message_id}",{body[1:]}' if len(body) > 2 else f'{{"id":"{message_id}"}}'


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
