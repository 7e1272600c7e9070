"""Result passwords: generated strong, stored encrypted (AES-256-GCM), shown only to the owner."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr


def new_result_password() -> str:
    """A password Cloudgene encrypts the result zip with: 24 URL-safe characters (~143 bits)."""
    return secrets.token_urlsafe(18)


class PasswordBox:
    """Seals and opens result passwords with a key derived from RESULT_PASSWORD_KEY."""

    def __init__(self, key: SecretStr) -> None:
        self._aead = AESGCM(hashlib.sha256(key.get_secret_value().encode()).digest())

    def seal(self, password: str, job_id: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, password.encode(), job_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, job_id: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], job_id.encode()).decode()
