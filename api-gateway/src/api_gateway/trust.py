"""Who the client is: the peer address, or what trusted proxies in front of us say it is.

``X-Forwarded-For`` is believed only when the peer is a configured trusted proxy; the chain is
then walked from the right, skipping trusted hops, and the first untrusted address is the
client. Anyone else sending ``X-Forwarded-For`` is ignored, so a client cannot choose the IP its
rate limit is counted under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
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

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address for ``peer`` and the request's ``X-Forwarded-For`` value."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not _is_ip(hop):
                return peer  # a garbled chain is not evidence of anything
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
