"""Short-lived, single-use WebSocket tickets: how a browser authenticates a WebSocket without
putting its access token in a URL.

``POST /notifications/ws/tickets`` (with the usual ``Authorization`` header) returns a random
ticket valid for ``WS_TICKET_TTL_SECONDS``; the client connects to
``/notifications/ws?ticket=...`` within that time, and the ticket is spent on first use.
Redis keeps only the ticket's SHA-256 (so its keys are no credential) with the user and the
expiry of the token that asked for it, and is shared by every replica.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow

__all__ = ["Identity", "TicketError", "Tickets", "identity_of"]


class TicketError(Exception):
    """A ticket that is unknown, already spent or expired (the message says which)."""


@dataclass(frozen=True)
class Identity:
    """Who a live connection belongs to, until when."""

    user_id: uuid.UUID
    expires_at: datetime


def identity_of(principal: Principal) -> Identity:
    """The identity an access token proves, valid until the token expires."""
    exp = principal.claims.get("exp")
    expires_at = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else utcnow()
    return Identity(principal.user_id, expires_at)


class Tickets:
    def __init__(self, redis: Redis, ttl_seconds: int, prefix: str) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _key(self, ticket: str) -> str:
        return self._prefix + hashlib.sha256(ticket.encode()).hexdigest()

    async def issue(self, identity: Identity) -> tuple[str, datetime]:
        ticket = secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(seconds=self._ttl)
        value = {
            "user_id": str(identity.user_id),
            "expires_at": expires_at.isoformat(),
            "credentials_expire_at": identity.expires_at.isoformat(),
        }
        # Redis drops it a little after it expired; the stored expiry is what is enforced.
        await self._redis.set(self._key(ticket), json.dumps(value), ex=self._ttl + 60)
        return ticket, expires_at

    async def redeem(self, ticket: str) -> Identity:
        if not ticket or len(ticket) > 200:
            raise TicketError("invalid ticket")
        raw = await self._redis.getdel(self._key(ticket))
        if raw is None:
            raise TicketError("unknown or already used ticket")
        value = json.loads(raw)
        if datetime.fromisoformat(value["expires_at"]) <= utcnow():
            raise TicketError("the ticket has expired: ask for a new one")
        return Identity(
            uuid.UUID(value["user_id"]), datetime.fromisoformat(value["credentials_expire_at"])
        )
