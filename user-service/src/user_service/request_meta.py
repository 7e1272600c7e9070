"""Who is on the other end of a request: client address, user agent and request id.

user-service sits behind the gateway. The peer address of a request is the gateway's, so the
client's own address is taken from ``X-Forwarded-For`` — but only when the peer is a trusted
proxy (``TRUSTED_PROXIES``, loopback by default): anyone else could write any address there.
Every line of the header is read (joined), right to left, skipping trusted proxies; the first
other address is the client. A malformed entry ends the walk at the last trusted hop. The rule
is the gateway's own (:mod:`fedimpute_shared.client_address`), and so is the address bucket the
login throttle counts (an IPv6 client by its /64).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from fedimpute_shared.client_address import TrustedProxies, address_bucket, join_header_lines
from fedimpute_shared.context import current_request_id

_MAX_USER_AGENT = 512


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None  # the full client address (audit, sessions)
    user_agent: str | None
    request_id: str | None
    # What the address throttle counts: the address's /64 for IPv6 (``CLIENT_IPV6_PREFIX``).
    address_bucket: str | None = None


@lru_cache(maxsize=16)
def _trusted(entries: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(entries)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str | None:
    """The client address, believing ``X-Forwarded-For`` only from trusted proxies."""
    return _trusted(trusted).client_ip(peer, forwarded_for)


async def request_meta(request: Request) -> RequestMeta:
    settings = request.state.settings
    peer = request.client.host if request.client else None
    forwarded = join_header_lines(request.headers.getlist("x-forwarded-for"))
    ip = client_ip(peer, forwarded, tuple(settings.trusted_proxies))
    user_agent = request.headers.get("user-agent")
    return RequestMeta(
        ip=ip,
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        request_id=current_request_id(),
        address_bucket=address_bucket(ip, ipv6_prefix=settings.client_ipv6_prefix) if ip else None,
    )


MetaDep = Annotated[RequestMeta, Depends(request_meta)]
