"""Outbound URL safety: the platform calls URLs that administrators (and, later, remote services)
give it, so it must not become a way into the private network (SSRF).

Two layers:

1. :func:`check_outbound_url` when a URL is stored: http(s) only, no credentials in it, and no
   literal loopback/private/link-local/metadata address or local host name.
2. :func:`resolve_allowed` when a connection is opened: every address the host name resolves
   to is checked *at connect time* and the socket goes to a checked address, so DNS tricks
   (a public name resolving to 127.0.0.1, rebinding between check and use) and redirects to
   private addresses are refused too. :class:`GuardedTransport` is the httpx transport that
   does this for every connection (use it for any httpx call to a URL an administrator or a
   remote service gave us: job-processor's calls to imputation servers and result downloads);
   the registry's probe client calls :func:`resolve_allowed` itself.

``allow_private=True`` (the development fleet, whose sandbox runs on loopback) lifts the
private-address rule; cloud-metadata endpoints stay refused whatever the setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore

from fedimpute_shared.transport import PooledTransport

__all__ = [
    "GuardedTransport",
    "IPAddress",
    "UnsafeURLError",
    "address_refusal",
    "check_outbound_url",
    "resolve_allowed",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance-metadata endpoints of the big clouds: credentials live there.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class UnsafeURLError(ValueError):
    """A URL the platform must not call; the message says why (safe to show)."""


def address_refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``ip`` may not be called, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast address"
    if not ip.is_global:
        return f"{ip} is a private address"
    return None


def check_outbound_url(url: str, *, allow_private: bool) -> str:
    """Validate a URL to be stored and called later; returns it without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("the URL must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeURLError("the URL has no host")
    if parts.fragment:
        raise UnsafeURLError("the URL must not contain a fragment")
    try:
        _ = parts.port
    except ValueError:
        raise UnsafeURLError("the URL has an invalid port") from None
    if host in _METADATA_HOSTS:
        raise UnsafeURLError(f"{host} is a cloud metadata host")
    if not allow_private and (host in _LOCAL_HOSTS or host.endswith(".localhost")):
        raise UnsafeURLError(f"{host} is a local host name")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and (reason := address_refusal(literal, allow_private=allow_private)):
        raise UnsafeURLError(reason)
    return url.strip().rstrip("/")


async def resolve_allowed(
    host: str,
    port: int,
    *,
    allow_private: bool,
    timeout: float | None,  # noqa: ASYNC109 (a resolver deadline, passed on)
) -> list[IPAddress]:
    """Every address ``host`` resolves to, when all of them may be called.

    Raises :class:`UnsafeURLError` when one of them may not (the message names it), and
    ``OSError``/``TimeoutError`` when the name does not resolve in time.
    """
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{host} has no address")
    for ip in addresses:
        if reason := address_refusal(ip, allow_private=allow_private):
            raise UnsafeURLError(f"refused to connect to {host}: {reason}")
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_allowed(
                host, port, allow_private=self._allow_private, timeout=timeout
            )
        except UnsafeURLError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for outbound calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(PooledTransport):
    """An httpx transport whose connections go only to allowed addresses.

    TLS still verifies the certificate against the host name (the socket goes to a checked
    address, the handshake names the host).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        max_connections_per_origin: int = 100,
        keepalive_expiry: float = 30,
    ) -> None:
        super().__init__(
            max_connections_per_origin=max_connections_per_origin,
            keepalive_expiry=keepalive_expiry,
            network_backend=_GuardedBackend(httpcore.AnyIOBackend(), allow_private=allow_private),
        )
