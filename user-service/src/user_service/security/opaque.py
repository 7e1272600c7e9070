"""Opaque secrets (refresh tokens, API tokens, one-time email tokens): random, stored hashed.

They carry 256 bits of randomness, so a single SHA-256 is enough to store them safely (unlike
passwords, they cannot be guessed from a dictionary), and lookups by hash stay one index probe.
"""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "fgi_"
REFRESH_TOKEN_PREFIX = "fgr_"


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
