"""The gateway's request-time state and the edge checks every proxied request passes.

One :class:`Gateway` lives in the lifespan state (``scope["state"]["gateway"]``). Its
:meth:`Gateway.admit` runs, in order: who is the client (IP, trusted proxies), who is the user
(token, when present or required), and the rate limit (by user when authenticated, by IP
otherwise, and always by IP for the login class so a brute force cannot spread over accounts;
an IPv6 client counts by its /64, see :mod:`fedimpute_shared.client_address`).
A request refused for its credentials still counts against its IP, so guessing tokens is
rate-limited like guessing passwords; an API token not yet in the exchange cache is counted
against the IP *before* user-service is asked about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.types import Scope

from api_gateway.config import Settings
from api_gateway.headers import header
from api_gateway.identity import EdgeAuthenticator, Identity, bearer_token
from api_gateway.metrics import GatewayMetrics
from api_gateway.ratelimit import RateLimiter
from api_gateway.routes import LimitClass, RouteTable, Target, Transfer
from api_gateway.upstream_http import Timeouts, UpstreamConnections
from api_gateway.upstreams import UpstreamPool
from fedimpute_shared.client_address import TrustedProxies, address_bucket, join_header_lines
from fedimpute_shared.problems import ProblemError, ServiceUnavailable, Unauthorized


@dataclass(frozen=True, slots=True)
class Admission:
    """What the edge checks decided for one request."""

    identity: Identity | None
    client_ip: str
    rate_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Gateway:
    settings: Settings
    routes: RouteTable
    # Proxied requests go out on the proxy's own HTTP/1.1 client (``upstream_http.py``): no
    # cookie jar (which would carry one user's cookies into another's requests), auth flow,
    # redirects or hooks.
    connections: UpstreamConnections
    pools: dict[str, UpstreamPool]
    authenticator: EdgeAuthenticator
    limiter: RateLimiter | None
    trusted: TrustedProxies
    metrics: GatewayMetrics

    def __post_init__(self) -> None:
        connect = self.settings.connect_timeout_seconds
        api, long = self.settings.proxy_timeout_seconds, self.settings.transfer_timeout_seconds
        self._timeouts = {
            Transfer.API: Timeouts(connect=connect, read=api, write=api, pool=api),
            Transfer.LONG: Timeouts(connect=connect, read=long, write=long, pool=long),
        }

    def timeouts(self, transfer: Transfer) -> Timeouts:
        """The upstream timeouts for a route's transfer kind."""
        return self._timeouts[transfer]

    async def admit(self, scope: Scope, target: Target) -> Admission:
        """Authenticate and rate-limit one request; raises the 401/429/503 problem to send."""
        headers = scope["headers"]
        peer = scope["client"][0] if scope.get("client") else "0.0.0.0"  # noqa: S104
        forwarded = (
            join_header_lines(v for k, v in headers if k == b"x-forwarded-for")
            if self.trusted
            else None
        )
        client_ip = self.trusted.client_ip(peer, forwarded) or peer
        authorization = header(headers, b"authorization")
        token = bearer_token(authorization.decode("latin-1") if authorization else None)

        limit_class = target.policy.limit_class
        by_ip = "ip:" + address_bucket(
            client_ip,
            ipv6_prefix=self.settings.client_ipv6_prefix,
            ipv4_prefix=self.settings.client_ipv4_prefix,
        )
        rate_headers: list[tuple[bytes, bytes]] = []
        counted: str | None = None
        if token is not None and self.authenticator.needs_upstream(token):
            # Count the IP before asking user-service, so guessing API tokens is throttled
            # before it costs user-service anything.
            rate_headers = await self._limit(limit_class, by_ip)
            counted = by_ip

        identity: Identity | None = None
        refusal: ProblemError | None = None
        if token is not None or not target.policy.public:
            try:
                identity = await self.authenticator.authenticate(token)
            except (Unauthorized, ServiceUnavailable) as exc:
                # A public route with an unusable credential is served anonymously.
                if not target.policy.public:
                    refusal = exc

        subject = by_ip
        if identity is not None and limit_class is not LimitClass.LOGIN:
            subject = identity.rate_key
        if subject != counted:
            rate_headers = await self._limit(limit_class, subject)
        if refusal is not None:
            raise refusal
        return Admission(identity, client_ip, rate_headers)

    async def _limit(self, limit_class: LimitClass, subject: str) -> list[tuple[bytes, bytes]]:
        """Count one request; raises the 429 problem; returns the RateLimit headers."""
        if self.limiter is None:
            return []
        decision = await self.limiter.hit(limit_class, subject)
        if decision is None:
            return []
        if not decision.allowed:
            raise decision.refusal()
        return decision.headers()
