"""AES-256-GCM for the credential vault, with key ids so keys can rotate.

Each credential is encrypted with the *active* key under a fresh 96-bit nonce; the key id is
stored beside the ciphertext, so older rows stay readable while ``VAULT_KEYS`` still holds their
key, and ``python -m user_service reencrypt-vault`` moves them to the active key. The associated
data binds a ciphertext to its owner and service: a row copied onto another user's or service's
row fails to decrypt instead of leaking.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

NONCE_BYTES = 12


class VaultDecryptError(RuntimeError):
    """A ciphertext could not be decrypted (unknown key id, or tampered/misplaced data)."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


class VaultCipher:
    def __init__(self, keys: dict[str, SecretStr], active_key_id: str) -> None:
        self._keys = {
            kid: AESGCM(base64.b64decode(key.get_secret_value())) for kid, key in keys.items()
        }
        if active_key_id not in self._keys:
            raise ValueError(f"active vault key {active_key_id!r} is not configured")
        self.active_key_id = active_key_id

    def seal(self, secret: dict[str, Any], associated_data: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(secret, separators=(",", ":")).encode()
        aead = self._keys[self.active_key_id]
        ciphertext = aead.encrypt(nonce, plaintext, associated_data.encode())
        return Sealed(self.active_key_id, nonce, ciphertext)

    def open(self, sealed: Sealed, associated_data: str) -> dict[str, Any]:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise VaultDecryptError(f"vault key {sealed.key_id!r} is no longer configured")
        try:
            plaintext = aead.decrypt(sealed.nonce, sealed.ciphertext, associated_data.encode())
        except InvalidTag:
            raise VaultDecryptError("the credential failed its integrity check") from None
        value: dict[str, Any] = json.loads(plaintext)
        return value
