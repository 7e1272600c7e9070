"""Webhook signatures: each endpoint's secret is derived, never stored, and every body is
signed with it together with a timestamp (so a captured request cannot be replayed later).

- secret = ``whsec_`` + hex(HMAC-SHA256(WEBHOOK_SIGNING_KEY, "<endpoint id>:<version>")):
  shown to the owner when the endpoint is created or its secret rotated (version + 1).
- header ``X-FedImpute-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.

A receiver recomputes ``v1`` over the raw body and refuses a ``t`` older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

__all__ = ["SIGNATURE_HEADER", "endpoint_secret", "sign"]

SIGNATURE_HEADER = "X-FedImpute-Signature"


def endpoint_secret(signing_key: str, endpoint_id: uuid.UUID, version: int) -> str:
    digest = hmac.new(
        signing_key.encode(), f"{endpoint_id}:{version}".encode(), hashlib.sha256
    ).hexdigest()
    return f"whsec_{digest}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
