"""Who is on the other end of a request: client address, user agent and request id.

user-service sits behind the gateway. The peer address of a request is the gateway's, so the
client's own address is taken from ``X-Forwarded-For`` — but only when the peer is a trusted
proxy (``TRUSTED_PROXIES``, loopback by default): anyone else could write any address there.
The header is read right to left, skipping trusted proxies; the first other address is the
client. A malformed entry ends the walk at the last trusted hop.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from fedimpute_shared.context import current_request_id

_MAX_USER_AGENT = 512

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None
    user_agent: str | None
    request_id: str | None


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str | None:
    """The client address, believing ``X-Forwarded-For`` only from trusted proxies."""
    networks = _networks(trusted)
    if peer is None or not forwarded_for or not _is_trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _is_trusted(hop, networks):
            break
    return client


async def request_meta(request: Request) -> RequestMeta:
    trusted = tuple(request.state.settings.trusted_proxies)
    peer = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent")
    return RequestMeta(
        ip=client_ip(peer, request.headers.get("x-forwarded-for"), trusted),
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        request_id=current_request_id(),
    )


MetaDep = Annotated[RequestMeta, Depends(request_meta)]
