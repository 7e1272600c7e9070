"""The keys that sign tokens, and the JWKS that publishes them (DESIGN.md §4).

One *signing* key (``JWT_SIGNING_KEY_FILE``) signs every new token; more *verification* keys
(``JWT_VERIFICATION_KEY_FILES``: the previous key after a rotation, the next one before it) are
published beside it so tokens signed by any of them keep verifying. A key's ``kid`` is its
RFC 7638 thumbprint: stable across restarts and replicas without any configuration.

RSA keys (2048 bits and more) sign RS256; EC P-256 keys sign ES256.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

logger = logging.getLogger(__name__)

Algorithm = Literal["RS256", "ES256"]
MIN_RSA_BITS = 2048


class KeyConfigurationError(RuntimeError):
    """A configured key file is missing, unreadable or of an unsupported kind."""


@dataclass(frozen=True)
class LoadedKey:
    """One key: its id, algorithm, public JWK, and (for the signing key) its private form."""

    kid: str
    algorithm: Algorithm
    public_jwk: dict[str, Any]
    signer: Any = field(default=None, repr=False)  # a python-jose Key, parsed once


def _algorithm_for(key: Any) -> Algorithm:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyConfigurationError(f"RSA keys need at least {MIN_RSA_BITS} bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyConfigurationError("EC keys must use the P-256 curve (ES256)")
        return "ES256"
    raise KeyConfigurationError("only RSA and EC P-256 keys are supported")


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's ``kid``."""
    members = ("e", "kty", "n") if public_jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: public_jwk[m] for m in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_key(path: Path, *, need_private: bool) -> LoadedKey:
    """Read a PEM key file (private, or public when ``need_private`` is false)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyConfigurationError(f"cannot read key file {path}: {exc.strerror}") from None
    private: Any = None
    try:
        private = serialization.load_pem_private_key(data, password=None)
        public = private.public_key()
    except (ValueError, TypeError):
        if need_private:
            raise KeyConfigurationError(f"{path} is not an unencrypted PEM private key") from None
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            raise KeyConfigurationError(f"{path} is not a PEM key") from None
    algorithm = _algorithm_for(public)
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    public_jwk = dict(jwk.construct(public_pem, algorithm).to_dict())
    kid = thumbprint(public_jwk)
    public_jwk |= {"kid": kid, "alg": algorithm, "use": "sig"}
    # From the parsed key object: parsing (and validating) an RSA PEM again costs ~70 ms.
    signer = jwk.construct(private, algorithm) if private is not None else None
    return LoadedKey(kid=kid, algorithm=algorithm, public_jwk=public_jwk, signer=signer)


def generate_key_file(path: Path, algorithm: Algorithm = "RS256") -> LoadedKey:
    """Write a new private key to ``path`` (mode 0600, parents created); refuse to overwrite."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite a key (tokens signed with it would stop verifying).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return load_key(path, need_private=True)


class Keyring:
    """The signing key plus every key accepted for verification."""

    def __init__(self, signing: LoadedKey, others: list[LoadedKey] | None = None) -> None:
        if signing.signer is None:
            raise KeyConfigurationError("the signing key must be a private key")
        self.signing = signing
        self._keys = {signing.kid: signing} | {k.kid: k for k in others or []}

    @classmethod
    def from_files(
        cls, signing_file: Path, verification_files: list[Path], *, create_missing: bool
    ) -> Keyring:
        if not signing_file.exists():
            if not create_missing:
                raise KeyConfigurationError(
                    f"JWT_SIGNING_KEY_FILE {signing_file} does not exist "
                    "(create one with `python -m user_service generate-signing-key PATH`)"
                )
            logger.warning("generating a development signing key at %s", signing_file)
            # Another replica may have created it between our check and now.
            with contextlib.suppress(FileExistsError):
                generate_key_file(signing_file)
        signing = load_key(signing_file, need_private=True)
        others = [load_key(p, need_private=False) for p in verification_files]
        return cls(signing, others)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys, signing key first."""
        return {"keys": [k.public_jwk for k in self._keys.values()]}

    def public_jwk(self, kid: str) -> dict[str, Any] | None:
        key = self._keys.get(kid)
        return key.public_jwk if key else None

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.signing
        return str(
            jwt.encode(claims, key.signer, algorithm=key.algorithm, headers={"kid": key.kid})
        )
