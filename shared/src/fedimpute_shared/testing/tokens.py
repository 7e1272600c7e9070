"""Mint real signed tokens in tests and serve their public key as a real JWKS over HTTP.

Until user-service issues tokens (and afterwards, for forged-token tests), a test run creates a
:class:`TokenIssuer`: an RSA key pair, a JWKS endpoint on a free loopback port (plain
``http.server`` in a thread: the services fetch it exactly as they fetch user-service's), and
helpers that mint good tokens and the classic forgeries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt

from fedimpute_shared.permissions import scopes_for_roles

__all__ = ["AUDIENCE", "ISSUER", "TokenIssuer", "bearer"]

ISSUER = "fedimpute-user-service"
AUDIENCE = "fedimpute-api"


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


class _KeyPair:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        public_jwk = jwk.construct(self.public_pem, "RS256").to_dict()
        self.public_jwk = {**public_jwk, "kid": kid, "alg": "RS256", "use": "sig"}


class TokenIssuer:
    """Signs tokens like user-service does and publishes a JWKS at :attr:`jwks_url`."""

    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self._key = _KeyPair("test-key-1")
        self.published: list[dict[str, Any]] = [self._key.public_jwk]
        self.jwks_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                issuer.jwks_requests += 1
                body = json.dumps({"keys": issuer.published}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

        return Handler

    # ------------------------------------------------------------- good tokens

    def rotate(self) -> None:
        """Start signing with a new key and publish it beside the old one."""
        self._key = _KeyPair(f"test-key-{len(self.published) + 1}")
        self.published.append(self._key.public_jwk)

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        return str(
            jwt.encode(
                claims,
                self._key.private_pem,
                algorithm="RS256",
                headers={"kid": self._key.kid, **(headers or {})},
            )
        )

    def access_token(
        self,
        user_id: uuid.UUID | str | None = None,
        *,
        roles: Iterable[str] = ("researcher",),
        scopes: Iterable[str] | None = None,
        expires_in: int = 900,
        **overrides: Any,
    ) -> str:
        """A user's access token; scopes default to the roles' default permissions."""
        role_set = frozenset(roles)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id or uuid.uuid4()),
            "typ": "access",
            "roles": sorted(role_set),
            "scopes": sorted(scopes if scopes is not None else scopes_for_roles(role_set)),
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        return self.sign(claims | overrides)

    def service_token(self, caller: str, audience: str, *, expires_in: int = 300) -> str:
        now = int(time.time())
        return self.sign(
            {
                "iss": self.issuer,
                "aud": audience,
                "sub": f"service:{caller}",
                "typ": "service",
                "iat": now,
                "exp": now + expires_in,
                "jti": uuid.uuid4().hex,
            }
        )

    # ------------------------------------------------------------- forgeries

    def unsigned_token(self, **claims: Any) -> str:
        """``alg: none``: no signature at all."""
        header = {"alg": "none", "typ": "JWT", "kid": self._key.kid}
        return f"{_b64json(header)}.{_b64json(self._claims(claims))}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """HS256 keyed with the *public* key (the algorithm-confusion attack)."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self._key.kid}
        signing_input = f"{_b64json(header)}.{_b64json(self._claims(claims))}"
        mac = hmac.new(self._key.public_pem.encode(), signing_input.encode(), hashlib.sha256)
        return f"{signing_input}.{_b64(mac.digest())}"

    def token_signed_by_stranger(self, **claims: Any) -> str:
        """Right ``kid``, wrong private key."""
        stranger = _KeyPair(self._key.kid)
        token = jwt.encode(
            self._claims(claims),
            stranger.private_pem,
            algorithm="RS256",
            headers={"kid": stranger.kid},
        )
        return str(token)

    def _claims(self, overrides: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(uuid.uuid4()),
            "typ": "access",
            "roles": ["admin"],
            "scopes": sorted(scopes_for_roles({"admin"})),
            "iat": now,
            "exp": now + 900,
            "jti": uuid.uuid4().hex,
        } | overrides


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data, separators=(",", ":")).encode())
