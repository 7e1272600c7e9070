"""Verifying our own tokens in-process: the shared ``TokenVerifier`` over the local keyring.

Every other service fetches our JWKS over HTTP; user-service itself holds the keys, so its
verifier reads them directly (same checks, no request to itself).
"""

from __future__ import annotations

from typing import Any

import httpx

from fedimpute_shared.auth import JWKSCache, TokenError
from user_service.security.keys import Keyring


class LocalJWKS(JWKSCache):
    def __init__(self, keyring: Keyring, client: httpx.AsyncClient) -> None:
        super().__init__("local:keyring", client)
        self._keyring = keyring

    async def get(self, kid: str) -> dict[str, Any]:
        key = self._keyring.public_jwk(kid)
        if key is None:
            raise TokenError("token signed with an unknown key")
        return key
