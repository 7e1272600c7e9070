"""Who the client is, and the address bucket its rate limits and throttles are counted under.

One implementation for every service (the gateway's rate limiter and user-service's login
throttle used to disagree):

* ``X-Forwarded-For`` is believed only when the peer is a configured trusted proxy. All the
  header's lines are joined (RFC 9110 §5.3: repeated fields are one comma-separated list; a
  proxy that appends its own line must not let the client's forged first line win), then the
  chain is walked from the right, skipping trusted hops: the first untrusted hop is the client.
  A hop that is not an address (garbage, ``unknown``) ends the walk at the last trusted hop, so
  nobody picks their own address by writing nonsense.
* :func:`address_bucket` maps an address to the key counted: IPv4 as is (``/32`` by default),
  IPv6 by its ``/64`` (by default) — one end site gets a /64 or more, so counting per /128
  would give an attacker 2**64 buckets. An IPv4-mapped IPv6 address counts as its IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = [
    "DEFAULT_IPV4_PREFIX",
    "DEFAULT_IPV6_PREFIX",
    "IPAddress",
    "IPNetwork",
    "TrustedProxies",
    "address_bucket",
    "join_header_lines",
    "parse_address",
]

DEFAULT_IPV4_PREFIX = 32
DEFAULT_IPV6_PREFIX = 64

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it in ``X-Forwarded-For``: bare, ``[v6]``, ``[v6]:port`` or
    ``v4:port``; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has two colons or more)
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def join_header_lines(values: Iterable[str | bytes]) -> str | None:
    """Every line of a repeated header as the one list it means (None when there is none)."""
    parts = [v.decode("latin-1") if isinstance(v, bytes) else v for v in values]
    return ", ".join(parts) if parts else None


class TrustedProxies:
    """The configured trusted proxies (addresses or CIDRs); raises ValueError naming a bad one."""

    def __init__(self, entries: Iterable[str]) -> None:
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR"
                ) from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | IPAddress) -> bool:
        ip = parse_address(address) if isinstance(address, str) else address
        return ip is not None and any(ip in network for network in self._networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address, given the peer and every ``X-Forwarded-For`` line joined."""
        if peer is None or not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:
                break  # a garbled hop: the last trusted one is the best we know
            client = str(address)
            if not self.trusts(address):
                break
        return client


def address_bucket(
    address: str,
    *,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
) -> str:
    """The key a client address is counted under: its IPv4 /``ipv4_prefix`` or IPv6
    /``ipv6_prefix`` network (``2001:db8:1:2::/64``); text that is no address is kept as is."""
    ip = parse_address(address)
    if ip is None:
        return address
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    if prefix >= ip.max_prefixlen:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
