"""Verifying who is calling: user access tokens and service tokens (DESIGN.md §4).

user-service signs JWTs with an asymmetric key and publishes the public keys as a JWKS. Every
service verifies every token itself (never trusting a header set by the gateway):

- :class:`JWKSCache` fetches the JWKS, caches it, and refetches when a token names a ``kid`` it
  does not know (key rotation), at most once per ``min_refresh_seconds`` so random ``kid``s
  cannot make us hammer user-service; it backs off while user-service is down and stops
  trusting withdrawn keys after a grace period.
- :class:`TokenVerifier` accepts only RS256/ES256 (so ``alg: none`` and HS256-with-the-public-key
  forgeries fail), checks issuer, audience, expiry and the ``typ`` claim.
- FastAPI dependencies: ``CurrentUser`` (a user's access token), ``ServiceCaller`` (a service
  token whose audience is this service: the only way into ``/internal/...`` routes), and the
  factories :func:`require_roles` and :func:`require_scopes`.

Token claims (the contract user-service implements):
- access: ``iss``, ``aud`` (= the platform audience, required), ``sub`` (user UUID), ``typ="access"``,
  ``roles``, ``scopes``, ``iat``, ``exp``, ``jti``; header ``kid``.
- service: ``iss``, ``aud`` (= the callee's service name), ``sub="service:<caller>"``,
  ``typ="service"``, ``iat``, ``exp``, ``jti``; header ``kid``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError

from fedimpute_shared.context import user_id_var
from fedimpute_shared.permissions import ADMIN_SCOPE, Role
from fedimpute_shared.problems import Forbidden, ServiceUnavailable, Unauthorized

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CLOCK_LEEWAY_SECONDS",
    "CurrentUser",
    "JWKSCache",
    "Principal",
    "ServiceCaller",
    "TokenError",
    "TokenVerifier",
    "check_role_and_scope",
    "current_user",
    "require_admin",
    "require_role_and_scope",
    "require_roles",
    "require_scopes",
    "require_services",
    "service_caller",
]

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256")
_KTY_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}
CLOCK_LEEWAY_SECONDS = 30
VERIFIED_CACHE_SIZE = 2048  # tokens kept verified per process (about 1 KiB each)


class TokenError(Exception):
    """A token that must be refused; the message is safe to show to the client."""


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request."""

    subject: str
    token_type: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def user_id(self) -> uuid.UUID:
        """The user's UUID (access tokens only)."""
        return uuid.UUID(self.subject)

    @property
    def service_name(self) -> str | None:
        """The calling service's name for service tokens (``sub="service:<name>"``)."""
        prefix = "service:"
        return self.subject.removeprefix(prefix) if self.subject.startswith(prefix) else None

    @property
    def is_service(self) -> bool:
        return self.token_type == "service"

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def holds(self, roles: Iterable[str], scope: str) -> bool:
        """One of ``roles`` *and* ``scope``: the test for every privileged action.

        A role alone is not enough: exchanging an API token narrows its scopes but keeps every
        role of its owner, so an admin's ``files:read`` script token still says ``admin``.
        """
        return self.has_role(*roles) and self.has_scope(scope)

    @property
    def is_admin(self) -> bool:
        """Acting as an administrator — on other users' data, on platform settings — needs the
        ``admin`` role *and* the admin scope (:data:`~fedimpute_shared.permissions.ADMIN_SCOPE`),
        in every service (issue 10, item 3)."""
        return self.holds((Role.ADMIN,), ADMIN_SCOPE)


class JWKSCache:
    """The issuer's public keys by ``kid``, fetched over HTTP and cached.

    - Refetched when older than ``ttl_seconds``, or for an unknown ``kid`` at most once per
      ``min_refresh_seconds``.
    - While the JWKS cannot be fetched, attempts back off (``retry_seconds`` doubling up to
      ``max_retry_seconds``): requests meanwhile neither fetch nor wait on the lock, and keep
      being served with the keys already known.
    - Those keys are not trusted forever: once the last good fetch is older than
      ``max_stale_seconds``, every key is dropped (503 until the JWKS answers again).
    - A key the JWKS no longer lists is kept for ``withdrawn_grace_seconds`` (replicas of
      user-service may briefly disagree during a rotation), then dropped.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl_seconds: float = 300,
        min_refresh_seconds: float = 10,
        retry_seconds: float = 1,
        max_retry_seconds: float = 60,
        withdrawn_grace_seconds: float = 60,
        max_stale_seconds: float = 3600,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._retry = retry_seconds
        self._max_retry = max_retry_seconds
        self._grace = withdrawn_grace_seconds
        self._max_stale = max_stale_seconds
        self._keys: dict[str, dict[str, Any]] = {}
        self._withdrawn_at: dict[str, float] = {}  # kid -> when a fetch first missed it
        self._fetched_at = float("-inf")  # the last successful fetch
        self._attempted_at = float("-inf")  # the last attempt, successful or not
        self._next_attempt = float("-inf")  # no attempt before this (backoff)
        self._failures = 0
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> dict[str, Any]:
        """The JWK for ``kid``; refetches when stale or when ``kid`` is unknown."""
        now = time.monotonic()
        self._expire(now)
        stale = now - self._fetched_at > self._ttl
        unknown_and_refreshable = (
            kid not in self._keys and now - self._attempted_at > self._min_refresh
        )
        if (stale or unknown_and_refreshable) and now >= self._next_attempt:
            await self._refresh()
            self._expire(time.monotonic())
        try:
            return self._keys[kid]
        except KeyError:
            if not self._keys and now - self._fetched_at > self._max_stale:
                raise ServiceUnavailable("token keys are unavailable; try again shortly") from None
            raise TokenError("token signed with an unknown key") from None

    def _expire(self, now: float) -> None:
        """Drop withdrawn keys past their grace, and every key once the JWKS is too old."""
        if self._keys and now - self._fetched_at > self._max_stale:
            logger.error(
                "JWKS from %s unreachable for over %.0f s: no token is trusted until it answers",
                self.url,
                self._max_stale,
            )
            self._keys, self._withdrawn_at = {}, {}
            return
        for kid, since in list(self._withdrawn_at.items()):
            if now - since > self._grace:
                self._keys.pop(kid, None)
                del self._withdrawn_at[kid]

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now < self._next_attempt or now - self._attempted_at <= self._min_refresh:
                return  # another request tried while we waited (or we are backing off)
            self._attempted_at = now
            try:
                response = await self._client.get(self.url)
                response.raise_for_status()
                keys = response.json()["keys"]
                listed = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self._failures += 1
                delay = min(self._max_retry, self._retry * 2 ** (self._failures - 1))
                self._next_attempt = time.monotonic() + delay
                logger.warning(
                    "could not fetch JWKS from %s: %s; next attempt in %.1f s",
                    self.url,
                    type(exc).__name__,
                    delay,
                )
                return  # keep serving the keys we have (until max_stale_seconds)
            self._failures = 0
            self._next_attempt = float("-inf")
            now = time.monotonic()
            for kid in self._keys.keys() - listed.keys():
                self._withdrawn_at.setdefault(kid, now)
            for kid in listed:
                self._withdrawn_at.pop(kid, None)
            kept = {kid: self._keys[kid] for kid in self._withdrawn_at if kid in self._keys}
            self._keys = {**kept, **listed}
            self._fetched_at = now


class TokenVerifier:
    """Checks signature, algorithm, issuer, audience, expiry and token type."""

    def __init__(self, jwks: JWKSCache, *, issuer: str, audience: str, service_name: str) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.service_name = service_name
        # A client sends the same token for its whole lifetime: checking the RSA signature
        # and the claims again on every request was a tenth of a small request's CPU. What
        # was verified once is kept (bounded, oldest out first) with the key that verified
        # it; a hit is still refused once expired, or when that key is no longer the one the
        # JWKS cache holds for its kid (withdrawn, dropped as stale, or refetched).
        self._verified: dict[tuple[str, str], _Verified] = {}

    async def verify_access(self, token: str) -> Principal:
        """A user's access token for the platform audience."""
        return await self._verify(token, audience=self.audience, token_type="access")

    async def verify_service(self, token: str) -> Principal:
        """A service token addressed to this service."""
        return await self._verify(token, audience=self.service_name, token_type="service")

    async def _verify(self, token: str, *, audience: str, token_type: str) -> Principal:
        cache_key = (token, token_type)  # the type decides the audience
        hit = self._verified.get(cache_key)
        if hit is not None:
            if time.time() > hit.expires_at + CLOCK_LEEWAY_SECONDS:
                del self._verified[cache_key]
                raise TokenError("token has expired")
            if await self.jwks.get(hit.kid) is hit.key:
                return hit.principal
            del self._verified[cache_key]
        principal, kid, key = await self._verify_signed(token, audience, token_type)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        expires_at = float(principal.claims["exp"])  # required by _decode
        self._verified[cache_key] = _Verified(principal, kid, key, expires_at)
        return principal

    async def _verify_signed(
        self, token: str, audience: str, token_type: str
    ) -> tuple[Principal, str, dict[str, Any]]:
        """The full check: header, key, signature and claims."""
        header = _unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenError("token algorithm not accepted")
        if not isinstance(kid, str):
            raise TokenError("token has no key id")
        key = await self.jwks.get(kid)
        if key.get("kty") != _KTY_FOR_ALG[alg] or key.get("alg", alg) != alg:
            raise TokenError("token algorithm does not match its key")
        claims = _decode(token, key, alg=alg, audience=audience, issuer=self.issuer)
        if claims.get("typ") != token_type:
            raise TokenError(f"expected a {token_type} token")
        return _principal(claims), kid, key


@dataclass(frozen=True)
class _Verified:
    """A token that passed :meth:`TokenVerifier._verify_signed`, and with which key."""

    principal: Principal
    kid: str
    key: dict[str, Any]
    expires_at: float  # the exp claim (seconds since the epoch)


def _jwt() -> Any:
    """python-jose's ``jwt`` module, imported at the first token: it loads cryptography's
    OpenSSL bindings (~10 MB), which a process that has verified no token yet (the gateway
    between requests after start) does not need."""
    from jose import jwt

    return jwt


def _unverified_header(token: str) -> dict[str, Any]:
    jwt = _jwt()
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise TokenError("malformed token") from None
    if not isinstance(header, dict):
        raise TokenError("malformed token")
    return header


def _decode(
    token: str, key: dict[str, Any], *, alg: str, audience: str, issuer: str
) -> dict[str, Any]:
    jwt = _jwt()
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                # python-jose skips the audience check when the claim is absent: demand it, or
                # a token minted for no audience would be good everywhere.
                "require_aud": True,
                "leeway": CLOCK_LEEWAY_SECONDS,
            },
        )
    except ExpiredSignatureError:
        raise TokenError("token has expired") from None
    except JWTClaimsError as exc:
        raise TokenError(f"token claims are invalid: {exc}") from None
    except JWTError as exc:
        # jose reports a missing required claim as a plain JWTError, after the signature passed.
        if str(exc).startswith("missing required key"):
            raise TokenError(f"token claims are invalid: {exc}") from None
        raise TokenError("token signature is invalid") from None
    return dict(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    def as_set(name: str) -> frozenset[str]:
        value = claims.get(name) or []
        return frozenset(str(v) for v in value) if isinstance(value, list) else frozenset()

    return Principal(
        subject=str(claims["sub"]),
        token_type=str(claims["typ"]),
        roles=as_set("roles"),
        scopes=as_set("scopes"),
        token_id=claims.get("jti"),
        claims=claims,
    )


# ------------------------------------------------------------------ FastAPI dependencies

_bearer = HTTPBearer(auto_error=False, description="An access token from user-service (JWT).")


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.state.token_verifier
    return verifier


def _token_from(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The user behind a valid access token, else 401."""
    try:
        principal = await _verifier(request).verify_access(_token_from(credentials))
        _ = principal.user_id  # sub must be a UUID for a user token
    except (TokenError, ValueError) as exc:
        raise Unauthorized(str(exc) if isinstance(exc, TokenError) else "invalid subject") from None
    # Pushed by user-service when it deactivates a user or revokes a role (revocation.py).
    revoked = getattr(request.state, "revoked_users", None)
    if revoked is not None and revoked.refuses(principal):
        raise Unauthorized("this token was revoked (account deactivated or roles changed)")
    user_id_var.set(principal.subject)
    return principal


async def service_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The service behind a valid service token addressed to us, else 401.

    A user's access token fails here too (wrong ``typ`` and audience): internal routes are for
    services only.
    """
    token = _token_from(credentials)
    try:
        return await _verifier(request).verify_service(token)
    except TokenError as exc:
        raise Unauthorized(str(exc)) from None


CurrentUser = Annotated[Principal, Depends(current_user)]
ServiceCaller = Annotated[Principal, Depends(service_caller)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the current user must hold one of ``roles`` (403 otherwise)."""

    async def check(user: CurrentUser) -> Principal:
        if not user.has_role(*roles):
            raise Forbidden(f"this action needs one of the roles: {', '.join(roles)}")
        return user

    return check


def require_role_and_scope(
    roles: Iterable[str], scope: str
) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: one of ``roles`` *and* ``scope`` (403 naming what is missing)."""
    wanted = tuple(roles)

    async def check(user: CurrentUser) -> Principal:
        check_role_and_scope(user, wanted, scope)
        return user

    return check


def check_role_and_scope(user: Principal, roles: Iterable[str], scope: str) -> None:
    """403 unless ``user`` holds one of ``roles`` and ``scope`` (see :meth:`Principal.holds`)."""
    wanted = tuple(roles)
    if not user.has_role(*wanted):
        raise Forbidden(f"this action needs one of the roles: {', '.join(wanted)}")
    if not user.has_scope(scope):
        raise Forbidden(f"this token lacks the scope {scope}")


def require_admin(scope: str = ADMIN_SCOPE) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the ``admin`` role and ``scope`` (the admin scope by default)."""
    return require_role_and_scope((Role.ADMIN,), scope)


def require_scopes(*scopes: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the token must carry every one of ``scopes`` (403 otherwise)."""

    async def check(user: CurrentUser) -> Principal:
        missing = [s for s in scopes if not user.has_scope(s)]
        if missing:
            raise Forbidden(f"this token lacks the scope(s): {', '.join(missing)}")
        return user

    return check


def require_services(*names: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the calling service must be one of ``names`` (403 otherwise)."""

    async def check(caller: ServiceCaller) -> Principal:
        if caller.service_name not in names:
            raise Forbidden("this internal endpoint is not open to the calling service")
        return caller

    return check
