"""This replica's live connections, and delivery to them that never waits on a client.

Each connection has a bounded queue and its own sender task. Delivering a message puts the
(already serialised) text in the queues of the user's connections without awaiting anything;
a connection whose queue is full (its client stopped reading, so its sender is stuck on a
full socket) is dropped, so one stalled client never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from starlette.websockets import WebSocket

from fedimpute_shared.clock import current_clock
from fedimpute_shared.db import utcnow
from notification_service.live.broker import Broker, stream_id_key
from notification_service.metrics import NotificationMetrics

__all__ = ["CLOSE_SLOW", "CLOSE_UNAUTHORIZED", "Connection", "Hub"]

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401  # no valid credentials in time, or they expired
CLOSE_SLOW = 4408  # the client did not read its messages: reconnect with the last id seen


@dataclass(eq=False)
class Connection:
    """One authenticated WebSocket."""

    websocket: WebSocket
    user_id: uuid.UUID
    expires_at: datetime  # when its credentials expire (a renewal moves it)
    queue_size: int
    last_id: str = "0-0"  # the newest message id queued for it
    last_queued: float = 0.0  # when something was last queued for it (monotonic)
    close_code: int | None = None
    close_reason: str = ""
    queue: asyncio.Queue[str] = field(init=False)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)

    def offer(self, text: str, message_id: str | None = None) -> bool:
        """Queue ``text`` (skipping ids already queued); False when the queue is full."""
        if message_id is not None:
            if stream_id_key(message_id) <= stream_id_key(self.last_id):
                return True
            self.last_id = message_id
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        self.last_queued = current_clock().monotonic()
        return True

    def request_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self.closing.set()


class Hub:
    def __init__(
        self, metrics: NotificationMetrics, *, send_timeout: float, heartbeat_seconds: float
    ) -> None:
        self._by_user: dict[uuid.UUID, set[Connection]] = {}
        self._metrics = metrics
        self._send_timeout = send_timeout
        self._heartbeat = heartbeat_seconds

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def add(self, connection: Connection) -> None:
        self._by_user.setdefault(connection.user_id, set()).add(connection)
        self._metrics.ws_connections.inc()

    def remove(self, connection: Connection) -> None:
        peers = self._by_user.get(connection.user_id)
        if peers is not None and connection in peers:
            peers.discard(connection)
            self._metrics.ws_connections.dec()
            if not peers:
                del self._by_user[connection.user_id]

    def deliver(self, user_id: uuid.UUID, message_id: str, text: str) -> None:
        """Queue a published message for every connection of ``user_id`` here."""
        for connection in list(self._by_user.get(user_id, ())):
            if connection.offer(text, message_id):
                self._metrics.ws_messages.inc()
            else:
                self._drop_slow(connection)

    def _drop_slow(self, connection: Connection) -> None:
        if connection.close_code is None:
            self._metrics.ws_dropped.inc()
        connection.request_close(CLOSE_SLOW, "too slow: reconnect with the last id you saw")

    async def heartbeat(self) -> None:
        """A heartbeat for every connection that was sent nothing for a heartbeat interval
        (a busy one needs none); one whose credentials expired is closed."""
        now = utcnow()
        quiet_since = current_clock().monotonic() - self._heartbeat * 0.9
        beat = json.dumps({"type": "heartbeat", "at": now.isoformat()})
        for peers in list(self._by_user.values()):
            for connection in list(peers):
                if connection.expires_at <= now:
                    connection.request_close(CLOSE_UNAUTHORIZED, "credentials expired")
                elif connection.last_queued <= quiet_since and not connection.offer(beat):
                    self._drop_slow(connection)

    async def resync(self, broker: Broker) -> None:
        """After the fan-out listener (re)subscribed: what each connection may have missed."""
        for peers in list(self._by_user.values()):
            for connection in list(peers):
                for message_id, text in await broker.replay(
                    connection.user_id, connection.last_id, connection.queue_size
                ):
                    if not connection.offer(text, message_id):
                        self._drop_slow(connection)
                        break

    async def serve(
        self, connection: Connection, on_message: Callable[[str], Awaitable[None]]
    ) -> None:
        """Run one connection: send its queue, pass what the client sends to ``on_message``,
        until either side closes or the hub asks it to close."""
        sender = asyncio.ensure_future(self._send_loop(connection))
        receiver = asyncio.ensure_future(self._receive_loop(connection, on_message))
        closing = asyncio.ensure_future(connection.closing.wait())
        try:
            await asyncio.wait({sender, receiver, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, closing):
                task.cancel()
            await asyncio.gather(sender, receiver, closing, return_exceptions=True)
        if connection.close_code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    connection.websocket.close(connection.close_code, connection.close_reason),
                    self._send_timeout,
                )

    async def _send_loop(self, connection: Connection) -> None:
        while True:
            text = await connection.queue.get()
            try:
                await asyncio.wait_for(connection.websocket.send_text(text), self._send_timeout)
            except TimeoutError:
                self._drop_slow(connection)
                return

    async def _receive_loop(
        self, connection: Connection, on_message: Callable[[str], Awaitable[None]]
    ) -> None:
        while True:
            message = await connection.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            await on_message(text)
