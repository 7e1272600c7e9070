"""Keep-alive HTTP/1.1 connections reused in O(1): the platform's own httpx transport.

The gateway sends everything to its upstreams through it, and the outbound-URL guard
(:class:`fedimpute_shared.urls.GuardedTransport`) is this transport with a network backend that
checks every address before connecting: both are built only from httpx's and httpcore's public
interfaces (``AsyncBaseTransport``, ``AsyncHTTP11Connection``, network backends).

httpx's own transport (httpcore's connection pool) rescans every pooled connection, polling
each idle socket, on every request it assigns; with the dozens of connections a busy gateway
holds per service that costs milliseconds of CPU per request. This transport keeps, per
origin, a stack of idle ``httpcore.AsyncHTTPConnection``s (last used, first reused: the
warmest socket), checks only the one it takes, and caps open connections per origin with a
semaphore (waiting longer than the ``pool`` timeout is a ``PoolTimeout``). The HTTP/1.1 work
itself stays httpcore's, and errors are httpx's, so callers see an ordinary httpx transport.

Connections read up to 256 KiB at a time (httpcore's default is 64 KiB): a multi-GB download
then costs a quarter of the per-chunk work, which is what bounds a Python proxy's throughput.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

__all__ = ["PooledTransport"]

_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
}


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if cls in _ERRORS:
                raise _ERRORS[cls](str(exc)) from exc
        raise


class _Connection(httpcore.AsyncHTTP11Connection):
    READ_NUM_BYTES = 256 * 1024


class _Origin:
    """The connections to one ``scheme://host:port``."""

    def __init__(
        self,
        origin: httpcore.Origin,
        limit: int,
        keepalive: float,
        ssl: ssl.SSLContext | None,
        network: httpcore.AsyncNetworkBackend,
    ) -> None:
        self.origin = origin
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._keepalive = keepalive
        self._ssl = ssl
        self._network = network

    async def checkout(self, timeouts: dict[str, float | None]) -> _Connection:
        """A free connection (reused, else new), holding one of the origin's slots."""
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                raise httpcore.PoolTimeout("no free upstream connection in time") from None
        else:
            await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if connection.is_idle() and not connection.has_expired():
                    return connection
                await connection.aclose()
            return await self._connect(connect_timeout=timeouts.get("connect"))
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self, *, connect_timeout: float | None) -> _Connection:
        host = self.origin.host.decode("ascii")
        stream = await self._network.connect_tcp(host, self.origin.port, timeout=connect_timeout)
        if self.origin.scheme == b"https":
            context = self._ssl or httpx.create_ssl_context()
            stream = await stream.start_tls(context, server_hostname=host, timeout=connect_timeout)
        return _Connection(origin=self.origin, stream=stream, keepalive_expiry=self._keepalive)

    def checkin(self, connection: _Connection | None) -> None:
        """Give back a slot; keep the connection when it can serve another request."""
        if connection is not None and connection.is_idle():
            self._idle.append(connection)
        self._slots.release()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any, origin: _Origin, connection: _Connection) -> None:
        self._stream = stream
        self._origin = origin
        self._connection: _Connection | None = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            with _as_httpx_errors():
                await self._stream.aclose()
        finally:
            # A body not read to its end closes the connection (httpcore), so only clean
            # connections go back on the stack.
            self._origin.checkin(connection)


class PooledTransport(httpx.AsyncBaseTransport):
    """``network_backend`` opens the sockets (httpcore's anyio backend by default)."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 512,
        keepalive_expiry: float = 30,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._limit = max_connections_per_origin
        self._keepalive = keepalive_expiry
        self._network = network_backend or httpcore.AnyIOBackend()
        self._origins: dict[tuple[bytes, bytes, int], _Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    def _origin(self, url: httpx.URL) -> _Origin:
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.raw_scheme, url.raw_host, port)
        found = self._origins.get(key)
        if found is None:
            if url.scheme == "https" and self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            found = _Origin(
                httpcore.Origin(*key), self._limit, self._keepalive, self._ssl, self._network
            )
            self._origins[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = self._origin(url)
        timeouts = request.extensions.get("timeout", {})
        with _as_httpx_errors():
            connection = await origin.checkout(timeouts)
            try:
                response = await connection.handle_async_request(
                    httpcore.Request(
                        method=request.method,
                        url=httpcore.URL(
                            scheme=url.raw_scheme,
                            host=url.raw_host,
                            port=url.port,
                            target=url.raw_path,
                        ),
                        headers=request.headers.raw,
                        content=request.stream,
                        extensions=request.extensions,
                    )
                )
            except BaseException:
                origin.checkin(connection)
                raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, origin, connection),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for origin in self._origins.values():
            await origin.aclose()
