"""The rate limiter's Redis connection: one pipelined connection for its one script.

Every proxied request makes one Redis round trip (``ratelimit.py``). Through redis-py that
round trip cost a sixth of the gateway's CPU per request (``bench/gateway.py --py-spy``):
a pool checkout under a lock with a probing read, command packing through its encoder, its
observability hooks, a timeout context per read, and the parse. The limiter needs much less:
EVALSHA (and SCRIPT LOAD when Redis forgot the script), one connection, replies in order.

:class:`RedisPipe` writes each command the moment it is asked for and resolves the callers'
futures as the replies arrive, in order, so concurrent requests share the connection without
a lock (Redis answers a pipelined connection in order). A command not answered within
``timeout`` closes the connection (its state is unknown) and fails every command still
waiting; the next command connects again. Failures are redis-py's own exception types
(``ConnectionError``, ``TimeoutError``, ``NoScriptError``, ``ResponseError``), so callers
treat them like any Redis error. Settings come from the same ``REDIS_URL`` (``redis://``,
``rediss://``, ``unix://``; user, password and database number), parsed by redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["RedisPipe"]

Reply = str | int | bytes | list[Any] | ResponseError | None


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def _parse(buffer: bytes, position: int) -> tuple[Reply, int]:
    """One RESP2 reply starting at ``position``: (value, position after it)."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        raise _Incomplete
    kind, line, position = buffer[position], buffer[position + 1 : end], end + 2
    if kind == 0x3A:  # ":" integer
        return int(line), position
    if kind == 0x2A:  # "*" array
        count = int(line)
        if count < 0:
            return None, position
        items: list[Any] = []
        for _ in range(count):
            item, position = _parse(buffer, position)
            items.append(item)
        return items, position
    if kind == 0x24:  # "$" bulk string
        size = int(line)
        if size < 0:
            return None, position
        if len(buffer) < position + size + 2:
            raise _Incomplete
        return buffer[position : position + size], position + size + 2
    if kind == 0x2B:  # "+" simple string
        return line.decode(), position
    if kind == 0x2D:  # "-" error
        message = line.decode(errors="replace")
        error = NoScriptError if message.startswith("NOSCRIPT") else ResponseError
        return error(message), position
    raise RedisConnectionError(f"Redis sent something that is not RESP: {bytes(buffer[:40])!r}")


def _command(*parts: str | bytes | int | float) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Reply]] = deque()
        self._buffer = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        position = 0
        try:
            while position < len(buffer) and self.waiting:
                reply, position = _parse(buffer, position)
                future = self.waiting.popleft()
                if not future.done():
                    if isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except _Incomplete:
            pass
        except (ValueError, RedisConnectionError) as exc:
            self.fail(RedisConnectionError(f"bad reply from Redis: {exc}"))
            return
        self._buffer = buffer[position:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(RedisConnectionError("the connection to Redis was lost"))

    def fail(self, error: Exception) -> None:
        """Close the connection; every command still waiting gets ``error``."""
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class RedisPipe:
    """See the module docstring. ``timeout``: seconds to connect, and for each reply."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self._options = parse_url(url)
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Reply:
        return await self._call(_command("EVALSHA", sha, len(keys), *keys, *args))

    async def script_load(self, script: str) -> Reply:
        return await self._call(_command("SCRIPT", "LOAD", script))

    async def _call(self, command: bytes) -> Reply:
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connected()
        return await self._send(protocol, command)

    def _send(self, protocol: _Protocol, command: bytes) -> asyncio.Future[Reply]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        protocol.waiting.append(future)
        assert protocol.transport is not None
        protocol.transport.write(command)
        timer = loop.call_later(self._timeout, _expire, protocol, future)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    async def _connected(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.lost:
                self._protocol = await self._connect()
        return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._options
        kind = options.get("connection_class")
        try:
            async with asyncio.timeout(self._timeout):
                if kind is UnixDomainSocketConnection:
                    _, protocol = await loop.create_unix_connection(_Protocol, options["path"])
                else:
                    tls = ssl.create_default_context() if kind is SSLConnection else None
                    _, protocol = await loop.create_connection(
                        _Protocol,
                        options.get("host", "localhost"),
                        options.get("port", 6379),
                        ssl=tls,
                    )
                await self._handshake(protocol)
        except TimeoutError:
            raise RedisTimeoutError("connecting to Redis timed out") from None
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from None
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        options = self._options
        if options.get("password"):
            username = options.get("username")
            credentials = [username, options["password"]] if username else [options["password"]]
            await self._send(protocol, _command("AUTH", *credentials))
        if options.get("db"):
            await self._send(protocol, _command("SELECT", options["db"]))

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(RedisConnectionError("closed"))
            self._protocol = None


def _expire(protocol: _Protocol, future: asyncio.Future[Reply]) -> None:
    if not future.done():
        protocol.fail(RedisTimeoutError("Redis did not answer in time"))
