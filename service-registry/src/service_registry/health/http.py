"""The HTTP client for calls to external services (probes and panel sync): HTTP/1.1 GET over
asyncio streams, parsed by ``h11`` (the HTTP/1.1 state machine httpx itself is built on).

Why not httpx or aiohttp: a sweep opens one new connection per registered service, and on a
two-core machine the per-request machinery of those clients (connection pools, happy eyeballs,
hooks) cost 1 to 10 ms of CPU each — the difference between a 1,000-service sweep close to the
network-bound ideal and one 1.5 to 4 times slower (``bench/health_sweep.py``, ``docs/benchmarks.md``).
A probe needs far less: one GET, one connection, a bounded body, no cookies, no proxies, no
redirects followed automatically. ``h11`` does the parsing, which is the part to get right.

Safety (``fedimpute_shared.urls.resolve_allowed``, as in ``GuardedTransport``): the host name
is resolved here and every address it resolves to is checked before connecting, and the socket
goes to a checked address, so private, loopback and cloud-metadata addresses are refused whether
they come from a literal IP, a DNS answer or a redirect.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from fedimpute_shared.urls import UnsafeURLError, resolve_allowed

_READ_SIZE = 65536
_MAX_HEADER_BYTES = 16384  # h11's cap on the response head: header bombs stop here


class TransportError(Exception):
    """The exchange failed below HTTP (DNS, refused address, connection, protocol)."""


class BodyTooLarge(Exception):
    """The response body exceeds the caller's limit (it was not read further)."""

    def __init__(self, limit: int, status: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""


@dataclass(frozen=True)
class ProbeClient:
    """GETs with one connection each; see the module docstring for why and for the guard."""

    allow_private: bool
    connect_timeout: float
    user_agent: str = "FedImpute-service-registry"
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context)

    async def get(
        self,
        url: str,
        *,
        max_body: int,
        accept: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET ``url``; ``headers`` are added as given (credentials: never logged here)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reader, writer = await self._connect(host, port, parts.scheme == "https")
        try:
            connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADER_BYTES)
            request = h11.Request(
                method="GET",
                target=target,
                headers=[
                    ("Host", parts.netloc.rpartition("@")[2]),
                    ("Accept", accept),
                    ("User-Agent", self.user_agent),
                    ("Connection", "close"),
                    *(headers or {}).items(),
                ],
            )
            writer.write(connection.send(request) + connection.send(h11.EndOfMessage()))
            await writer.drain()
            return await _read_response(connection, reader, max_body)
        except (ConnectionError, asyncio.IncompleteReadError):
            raise TransportError("the server closed the connection") from None
        finally:
            writer.close()

    async def _connect(
        self, host: str, port: int, secure: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            addresses = await resolve_allowed(
                host, port, allow_private=self.allow_private, timeout=self.connect_timeout
            )
        except UnsafeURLError as exc:
            raise TransportError(str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"could not resolve {host}: {_describe(exc)}") from None
        last_error: OSError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    return await asyncio.open_connection(
                        str(address),
                        port,
                        ssl=self.tls if secure else None,
                        server_hostname=host if secure else None,
                        limit=_READ_SIZE * 2,
                    )
            except OSError as exc:  # refused, unreachable, TLS failure...: try the next address
                last_error = exc
        raise TransportError(f"connection failed: {_describe(last_error)}")


async def _read_response(
    connection: h11.Connection, reader: asyncio.StreamReader, max_body: int
) -> Response:
    status, headers = 0, {}
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            if not status and reader.at_eof():
                raise TransportError("the server closed the connection without answering") from None
            raise TransportError(f"the server broke the HTTP protocol: {exc}") from None
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(_READ_SIZE))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_body:
                raise BodyTooLarge(max_body, status)
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > max_body:
                raise BodyTooLarge(max_body, status)
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            if not status:
                raise TransportError("the server closed the connection without answering")
            return Response(status, headers, b"".join(chunks))


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def probe_client(allow_private: bool, timeout_seconds: float) -> ProbeClient:
    return ProbeClient(allow_private=allow_private, connect_timeout=min(5.0, timeout_seconds))
