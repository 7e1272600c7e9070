"""The HTTP client for calls to external services (probes and panel sync), on aiohttp.

Why not httpx like the rest of the platform: a sweep makes one request per registered service,
and on a small machine httpx spent ~10 ms of CPU per request against ~1 ms for aiohttp — the
difference between a 1,000-service sweep of 10 s and one close to the network-bound ideal
(``bench/health_sweep.py``, ``docs/benchmarks.md``).

Safety is that of ``fedimpute_shared.urls.GuardedTransport``: the address of every socket is
checked when it is created (:func:`guarded_socket_factory`), whether it came from a host name,
a literal IP or a redirect, so private, loopback and cloud-metadata addresses are refused at the
last moment — after DNS, where rebinding tricks cannot slip past.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable

import aiohttp
from aiohappyeyeballs import AddrInfoType

from fedimpute_shared.urls import address_refusal
from service_registry.config import Settings


def guarded_socket_factory(*, allow_private: bool) -> Callable[[AddrInfoType], socket.socket]:
    """A socket factory that refuses to create a socket towards a forbidden address."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(sockaddr[0])
        if reason := address_refusal(address, allow_private=allow_private):
            raise OSError(errno.EACCES, reason)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def probe_session(settings: Settings) -> aiohttp.ClientSession:
    """A session sized for the sweep's concurrency; no automatic redirects (probes follow them
    by hand), no cookies, no proxy from the environment, explicit timeouts."""
    connector = aiohttp.TCPConnector(
        limit=settings.health_check_concurrency,
        limit_per_host=0,
        ttl_dns_cache=60,
        socket_factory=guarded_socket_factory(allow_private=settings.allow_private_urls),
    )
    timeout = aiohttp.ClientTimeout(
        total=None,  # the probe's own deadline bounds the whole exchange
        connect=min(5.0, settings.health_check_timeout_seconds),
        sock_read=settings.health_check_timeout_seconds,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        headers={"User-Agent": "FedImpute-service-registry"},
    )
