"""Authentication at the edge: who is calling, before anything reaches a service.

A request carries ``Authorization: Bearer <token>`` where the token is an access JWT from
user-service (checked with the shared :class:`TokenVerifier`: RS256/ES256 only, JWKS key,
issuer, audience, expiry, ``typ=access``) or a personal API token ``fgi_...`` (exchanged for an
access JWT at user-service, see ``api_tokens.py``). What goes upstream is always the JWT:
services verify it again themselves and never see API tokens.

Signature checks cost about 0.3 ms, so a verified JWT is remembered for at most
``_VERIFIED_TTL_SECONDS`` (and never past its ``exp``): about what the JWKS cache already allows
for a withdrawn key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from api_gateway.api_tokens import API_TOKEN_PREFIX, ApiTokenExchanger, ApiTokenRefused
from api_gateway.metrics import GatewayMetrics
from fedimpute_shared.auth import Principal, TokenError, TokenVerifier
from fedimpute_shared.problems import Unauthorized

_VERIFIED_TTL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    access_token: str  # the JWT forwarded upstream

    @property
    def rate_key(self) -> str:
        return f"user:{self.principal.subject}"


@dataclass(slots=True)
class _Verified:
    identity: Identity
    valid_until: float


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` value; None when absent or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class EdgeAuthenticator:
    def __init__(
        self,
        verifier: TokenVerifier,
        exchanger: ApiTokenExchanger,
        metrics: GatewayMetrics,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._exchanger = exchanger
        self._metrics = metrics
        self._cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    def needs_upstream(self, token: str) -> bool:
        """Whether checking ``token`` costs a call to user-service (an uncached API token)."""
        return token.startswith(API_TOKEN_PREFIX) and not self._exchanger.has_cached(token)

    async def authenticate(self, token: str | None) -> Identity:
        """The identity behind ``token``; 401 problem when missing or refused (503 when the
        keys or user-service cannot be reached)."""
        if token is None:
            self._metrics.auth_failures.labels("missing").inc()
            raise Unauthorized("this route needs a bearer token (access token or API token)")
        if token.startswith(API_TOKEN_PREFIX):
            try:
                token = await self._exchanger.exchange(token)
            except ApiTokenRefused as exc:
                self._metrics.auth_failures.labels("api_token").inc()
                raise Unauthorized(str(exc)) from None
        return await self._verify(token)

    async def _verify(self, token: str) -> Identity:
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None and cached.valid_until > now:
            return cached.identity
        try:
            principal = await self._verifier.verify_access(token)
            _ = principal.user_id  # an access token's subject is a user UUID
        except TokenError as exc:
            self._metrics.auth_failures.labels("jwt").inc()
            raise Unauthorized(str(exc)) from None
        except ValueError:
            self._metrics.auth_failures.labels("jwt").inc()
            raise Unauthorized("token subject is not a user id") from None
        identity = Identity(principal, token)
        if self._cache_size:
            expires = float(principal.claims.get("exp", now))
            self._verified[token] = _Verified(identity, min(expires, now + _VERIFIED_TTL_SECONDS))
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return identity
