"""Signing access and service tokens with the keyring (the claims contract of shared ``auth``).

Access token claims: ``iss``, ``aud`` (platform audience), ``sub`` (user UUID), ``typ="access"``,
``roles``, ``scopes``, ``iat``, ``exp``, ``jti``, header ``kid``; plus, additively, ``iat_ms``,
``service_roles`` (service id -> roles held only for that service) when there are any, ``sid``
(the login session) or ``api_token_id`` (the API token it was exchanged for).

Service token claims: ``iss``, ``aud`` (the callee), ``sub="service:<caller>"``,
``typ="service"``, ``iat``, ``exp``, ``jti``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from user_service.config import Settings
from user_service.roles.service import Access
from user_service.security.keys import Keyring


@dataclass(frozen=True)
class SignedToken:
    token: str
    expires_in: int
    jti: str


def access_token(
    keyring: Keyring,
    settings: Settings,
    user_id: uuid.UUID,
    access: Access,
    *,
    session_id: uuid.UUID | None = None,
    api_token_id: uuid.UUID | None = None,
    ttl_seconds: int | None = None,
) -> SignedToken:
    ttl = min(ttl_seconds or settings.access_token_ttl_seconds, settings.access_token_ttl_seconds)
    extra: dict[str, Any] = {}
    if access.service_roles:
        extra["service_roles"] = {k: sorted(v) for k, v in access.service_roles.items()}
    if session_id is not None:
        extra["sid"] = str(session_id)
    if api_token_id is not None:
        extra["api_token_id"] = str(api_token_id)
    return _sign(
        keyring,
        settings,
        audience=settings.jwt_audience,
        subject=str(user_id),
        token_type="access",
        ttl=ttl,
        roles=sorted(access.roles),
        scopes=sorted(access.scopes),
        **extra,
    )


def service_token(keyring: Keyring, settings: Settings, caller: str, audience: str) -> SignedToken:
    return _sign(
        keyring,
        settings,
        audience=audience,
        subject=f"service:{caller}",
        token_type="service",
        ttl=settings.service_token_ttl_seconds,
    )


def _sign(
    keyring: Keyring,
    settings: Settings,
    *,
    audience: str,
    subject: str,
    token_type: str,
    ttl: int,
    **claims: Any,
) -> SignedToken:
    exact = time.time()
    now = int(exact)
    jti = uuid.uuid4().hex
    if token_type == "access":
        # iat to the millisecond: a token issued just after a user's access was cut (a new
        # login, a refresh with the new roles) is told from one issued just before it, in the
        # same second (fedimpute_shared.revocation).
        claims = {"iat_ms": int(exact * 1000), **claims}
    token = keyring.sign(
        {
            "iss": settings.jwt_issuer,
            "aud": audience,
            "sub": subject,
            "typ": token_type,
            "iat": now,
            "exp": now + ttl,
            "jti": jti,
            **claims,
        }
    )
    return SignedToken(token=token, expires_in=ttl, jti=jti)
