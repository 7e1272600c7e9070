"""The proxy's HTTP/1.1 client for the services: keep-alive connections as asyncio protocols,
responses parsed by ``httptools`` (llhttp, the C parser uvicorn already uses for our own
server side).

Why not httpx/httpcore here: on the proxy's hot path their per-request machinery (request and
URL models, h11's pure-Python state machine, anyio streams and cancel scopes, one coroutine
per layer) cost about 1 ms of CPU per proxied request, half the gateway's total
(``bench/gateway.py --py-spy``). A proxy needs much less: the request head is already parsed
and checked by uvicorn, the body is relayed as it comes, and the response's bytes go back as
they are. What stays: one connection per exchange, LIFO reuse of idle keep-alive connections
(the warmest socket first), a cap per origin with a pool timeout, connect/read/write timeouts,
back-pressure both ways (uploads wait when the upstream's socket is full; downloads pause
reading while the client is slow), and a connection reused only after a complete exchange.

Errors are this module's own (:class:`UpstreamError` and subclasses): :class:`ConnectFailed`
means nothing was sent, so the caller may try another replica with the same request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = [
    "ConnectFailed",
    "ConnectTimedOut",
    "Origin",
    "PoolTimeout",
    "ProtocolError",
    "Timeouts",
    "UpstreamConnections",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
]

# Response body bytes buffered before the connection stops reading from the upstream (and
# starts again below the low mark): a slow client never makes the gateway hold more.
_READ_HIGH_WATER = 1024 * 1024
_READ_LOW_WATER = 256 * 1024
# The longest response head accepted (status line and headers): a header bomb stops here.
_MAX_HEAD_BYTES = 64 * 1024
_BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})


class UpstreamError(Exception):
    """An exchange with an upstream failed below HTTP."""


class ConnectFailed(UpstreamError):
    """No connection could be opened: nothing was sent."""


class UpstreamTimeout(UpstreamError):
    """The upstream stayed silent (or did not take bytes) for longer than the timeout."""


class ConnectTimedOut(ConnectFailed, UpstreamTimeout):
    """Connecting took longer than the connect timeout: nothing was sent."""


class PoolTimeout(UpstreamError):
    """Every connection to the origin stayed busy for longer than the pool timeout."""


class ProtocolError(UpstreamError):
    """The upstream answered something that is not HTTP/1.1, or closed mid-exchange."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: to connect, of silence while reading or writing, and to wait for a slot."""

    connect: float
    read: float
    write: float
    pool: float


@dataclass(frozen=True, slots=True)
class Origin:
    host: str
    port: int
    tls: bool = False  # an https:// upstream (certificates checked against the system CAs)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, parsed as the bytes arrive."""

    def __init__(self, keepalive: float) -> None:
        self._keepalive = keepalive
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._writable: asyncio.Future[None] | None = None  # set while the socket is full
        self.idle_since = 0.0
        self._reset(b"GET")

    def _reset(self, method: bytes) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = method == b"HEAD"
        self._request_sent = False
        self._keep_alive = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: str | None = None
        self._head_bytes = 0
        self._head_done = False
        self._complete = False
        self._length_known = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._complete:
            self.close()  # bytes nobody asked for (an idle connection): never reuse it
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # a callback's exception arrives as one too
            self._parse_failed(exc)

    def _parse_failed(self, exc: Exception) -> None:
        if self._complete:  # bytes after a complete answer: it stands, the connection goes
            self.close()
        else:
            self._fail(ProtocolError(f"the upstream sent invalid HTTP: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._head_done and not self._complete and not self._length_known:
            self._complete = True  # a body delimited by the end of the connection
            self._wake()
        if not self._complete:
            self._fail(ProtocolError("the upstream closed the connection mid-exchange"))
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Stop  # a second answer to one request

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > _MAX_HEAD_BYTES:
            self._fail(ProtocolError("the upstream's response head is too large"))
            raise _Stop
        self.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            self.content_length = value.decode("latin-1")
            self._length_known = True
        elif lower == b"transfer-encoding":
            self._length_known = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            # informational: the real answer follows
            self.headers, self._head_bytes, self.content_length = [], 0, None
            return
        self.status = status
        self._head_done = True
        # Asked now: once the message is complete, llhttp has reset what this reads.
        self._keep_alive = self._parser.should_keep_alive()
        if self._head_only:
            self._complete = True  # a HEAD answer has no body, whatever its headers say
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _READ_HIGH_WATER and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self._head_done:
            return  # the end of an informational response
        self._complete = True
        self._length_known = True
        self._wake()

    # -- the exchange

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self._wake()
        self.close()

    async def _wait(self, silence: float, error: UpstreamError) -> None:
        """Until the parser makes progress (or the connection fails); ``error`` after
        ``silence`` seconds without any."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(silence, _expire, waiter, error)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _writable_again(self, silence: float) -> None:
        writable = self._writable
        if writable is None or self._closed:
            return
        timer = asyncio.get_running_loop().call_later(
            silence, _expire, writable, UpstreamTimeout("the upstream stopped taking the body")
        )
        try:
            await writable
        finally:
            timer.cancel()

    async def send(
        self,
        method: bytes,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        chunked: bool,
        timeouts: Timeouts,
    ) -> None:
        """Send the request head, then the body as it comes (chunk-framed when ``chunked``)."""
        assert self._transport is not None
        self._reset(method)
        self._transport.write(head)
        if body is None:
            self._request_sent = True
            return
        async for chunk in body:
            if self._closed or self._complete:
                break  # the upstream answered (or left) before the whole body: stop sending
            self._transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if self._writable is not None:
                await self._writable_again(timeouts.write)
        else:
            if chunked and not self._closed:
                self._transport.write(b"0\r\n\r\n")
            self._request_sent = True
            return
        self._request_sent = False  # cut short: the connection cannot carry another request

    async def response_head(self, silence: float) -> None:
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait(silence, UpstreamTimeout("the upstream did not answer in time"))
        if self._error is not None and not self._complete:
            raise self._error

    async def body(self, silence: float) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _READ_LOW_WATER and self._transport:
                    self._paused = False
                    self._transport.resume_reading()
                yield chunk
            elif self._complete:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait(silence, UpstreamTimeout("the upstream stopped sending"))

    def buffered_body(self) -> bytes | None:
        """The whole body when it has already arrived (one message instead of several)."""
        if not self._complete:
            return None
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    def reusable(self) -> bool:
        return (
            self._complete
            and self._request_sent
            and not self._closed
            and not self._head_only  # the parser still expects the body its headers announced
            and self._error is None
            and self._keep_alive
        )

    def fresh(self, now: float) -> bool:
        return not self._closed and now - self.idle_since < self._keepalive

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()
        self._closed = True


class _Stop(Exception):
    """Raised in a parser callback to stop parsing (feed_data then raises a parser error)."""


def _expire(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class UpstreamResponse:
    """A response whose head has arrived; read :meth:`body`, then always :meth:`close`."""

    def __init__(self, pool: _OriginPool, connection: _Connection, read_timeout: float) -> None:
        self._pool: _OriginPool | None = pool
        self._connection = connection
        self._read_timeout = read_timeout
        self.status = connection.status
        self.headers = connection.headers
        self.content_length = connection.content_length  # as sent, not checked

    def buffered_body(self) -> bytes | None:
        """The whole body, when it arrived with the head (most API answers); else None."""
        return self._connection.buffered_body()

    def body(self) -> AsyncIterator[bytes]:
        return self._connection.body(self._read_timeout)

    def close(self) -> None:
        """Give the connection back (kept only after a complete exchange)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.checkin(self._connection)


class _OriginPool:
    """The connections to one origin: idle ones on a stack, a cap on how many are open."""

    def __init__(self, origin: Origin, limit: int, keepalive: float) -> None:
        self.origin = origin
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._keepalive = keepalive
        self._tls = ssl.create_default_context() if origin.tls else None

    async def checkout(self, timeouts: Timeouts) -> _Connection:
        if self._slots.locked():
            try:
                async with asyncio.timeout(timeouts.pool):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout("no free upstream connection in time") from None
        else:
            await self._slots.acquire()
        try:
            now = time.monotonic()
            while self._idle:
                connection = self._idle.pop()
                if connection.fresh(now):
                    return connection
                connection.close()
            return await self._connect(timeouts.connect)
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self, within: float) -> _Connection:
        loop = asyncio.get_running_loop()
        keepalive = self._keepalive
        try:
            async with asyncio.timeout(within):
                _, connection = await loop.create_connection(
                    lambda: _Connection(keepalive),
                    self.origin.host,
                    self.origin.port,
                    ssl=self._tls,
                )
        except TimeoutError:
            raise ConnectTimedOut(f"connecting to {self.origin.host} timed out") from None
        except OSError as exc:
            raise ConnectFailed(exc.strerror or str(exc)) from None
        return connection

    def checkin(self, connection: _Connection) -> None:
        if connection.reusable():
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        self._slots.release()

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class UpstreamConnections:
    """Keep-alive connections to the upstream origins, ``limit`` open at most per origin."""

    def __init__(self, *, limit: int, keepalive: float) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._pools: dict[Origin, _OriginPool] = {}

    async def request(
        self,
        origin: Origin,
        method: bytes,
        head: bytes,
        body: AsyncIterator[bytes] | None,
        *,
        chunked: bool,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send one request (``head``: from :func:`request_head`) and wait for the response's
        head. Raises :class:`ConnectFailed` before anything is sent, other
        :class:`UpstreamError` after; whatever the body iterator raises passes through."""
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _OriginPool(origin, self._limit, self._keepalive)
        connection = await pool.checkout(timeouts)
        try:
            await connection.send(method, head, body, chunked, timeouts)
            await connection.response_head(timeouts.read)
        except BaseException:
            connection.close()
            pool.checkin(connection)
            raise
        return UpstreamResponse(pool, connection, timeouts.read)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], *, chunked: bool
) -> bytes:
    """The request line and headers. A POST/PUT/PATCH without a body says
    ``content-length: 0``; a streamed body of unknown length is sent chunked. Refuses (with
    ValueError) a target or header that would break the message's framing (CR, LF)."""
    lines = [b"%b %b HTTP/1.1\r\n" % (method, target)]
    framed = chunked
    for name, value in headers:
        lines.append(b"%b: %b\r\n" % (name, value))
        framed = framed or name == b"content-length"
    if chunked:
        lines.append(b"transfer-encoding: chunked\r\n")
    elif not framed and method in _BODY_METHODS:
        lines.append(b"content-length: 0\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    # One CR and one LF per line, no more: nothing can smuggle in a header or a second request.
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines):
        raise ValueError("a header or the target contains CR or LF")
    return head
