"""One-time secrets sealed to the notification service (docs/security.md, "secrets at rest").

A password-reset or verification token has to reach the notification service, which builds
the email, through the outbox and the event stream — both persistent. Sealing it to the
notification service's public key (libsodium sealed boxes: an ephemeral X25519 key, then
XSalsa20-Poly1305) means a producer holds only the public half, so neither its outbox table, nor
Redis, nor a log line ever holds anything usable; only the notification service can open it,
at the moment it renders the email.

PyNaCl is used instead of composing X25519 + HKDF + an AEAD ourselves: the construction is
libsodium's, well reviewed, and leaves nothing for us to get wrong.
"""

from __future__ import annotations

import base64
import binascii

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

__all__ = ["SealedSecretError", "generate_keypair", "open_sealed", "seal"]

# A sealed token is tiny; refuse anything far larger before decoding or decrypting it.
_MAX_SEALED_CHARS = 4096


class SealedSecretError(ValueError):
    """A key or sealed value that is malformed, or was not sealed to this key."""


def _decode(value: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value.encode("ascii") + b"=" * (-len(value) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SealedSecretError(f"{what} is not base64") from exc


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _key(value: str, kind: type[PublicKey] | type[PrivateKey], what: str) -> bytes:
    raw = _decode(value, what)
    if len(raw) != kind.SIZE:
        raise SealedSecretError(f"{what} must be {kind.SIZE} bytes, not {len(raw)}")
    return raw


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair, each as unpadded base64url text for settings files."""
    private = PrivateKey.generate()
    return _encode(bytes(private)), _encode(bytes(private.public_key))


def seal(public_key: str, secret: str) -> str:
    """``secret`` sealed to ``public_key`` (base64url); only the private key's holder opens it."""
    box = SealedBox(PublicKey(_key(public_key, PublicKey, "the public key")))
    return _encode(box.encrypt(secret.encode("utf-8")))


def open_sealed(private_key: str, sealed: str) -> str:
    """The secret inside ``sealed``; :class:`SealedSecretError` if it was not sealed to us."""
    if len(sealed) > _MAX_SEALED_CHARS:
        raise SealedSecretError("the sealed value is too long")
    box = SealedBox(PrivateKey(_key(private_key, PrivateKey, "the private key")))
    try:
        return box.decrypt(_decode(sealed, "the sealed value")).decode("utf-8")
    except (CryptoError, UnicodeDecodeError) as exc:
        raise SealedSecretError("the sealed value was not sealed to this key") from exc
