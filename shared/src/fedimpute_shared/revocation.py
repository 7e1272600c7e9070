"""Users whose access was cut (deactivated, a role revoked), pushed to every service at once.

An access token stays valid until it expires (up to an hour), and a service checks only its
signature and claims: without this, a deactivated user, or one who lost the admin role, would
keep using file-manager and the registry for the rest of the token's life (issue 10, item 19).

Contract (user-service announces, every service listens):

- ``SET fedimpute:user-revoked:<user id> <unix time>`` with a TTL of the longest access-token
  lifetime, then ``PUBLISH fedimpute:user-revoked "<user id> <unix time>"``.
- A service refuses a user's access token issued (``iat_ms``, else ``iat``) at or before that
  time; a token issued later (a new login, a refresh with the new roles, a reactivation) is
  accepted. user-service announces after the change is committed.
- Every service must use the same Redis database as user-service (the keys live in it).

Each service keeps the announcements in memory (:class:`RevokedUsers`), fed by a subscription
that, every time it (re)connects, first reads the keys (so announcements made while it was down
or disconnected are not missed). Checking a token is then a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fedimpute_shared.auth import Principal
from fedimpute_shared.tasks import stopping

__all__ = [
    "KEY_PREFIX",
    "REVOKED_USERS_CHANNEL",
    "RevokedUsers",
    "announce_user_revoked",
]

logger = logging.getLogger(__name__)

REVOKED_USERS_CHANNEL = "fedimpute:user-revoked"
KEY_PREFIX = "fedimpute:user-revoked:"
# The longest access-token lifetime user-service allows (ACCESS_TOKEN_TTL_SECONDS <= 3600),
# plus the verifiers' clock leeway: after that no token issued before the cut is still valid.
RETENTION_SECONDS = 3600 + 60
_RETRY_SECONDS = 2.0
_POLL_SECONDS = 1.0  # how long one read waits for an announcement


async def announce_user_revoked(redis: Redis, user_id: uuid.UUID, at: float | None = None) -> None:
    """Tell every service to refuse ``user_id``'s access tokens issued until now."""
    when = time.time() if at is None else at
    await redis.set(f"{KEY_PREFIX}{user_id}", repr(when), ex=RETENTION_SECONDS)
    await redis.publish(REVOKED_USERS_CHANNEL, f"{user_id} {when!r}")


class RevokedUsers:
    """The announcements this process has seen: user id -> the time their access was cut."""

    def __init__(self) -> None:
        self._cut: dict[str, float] = {}

    def refuses(self, principal: Principal) -> bool:
        """Whether ``principal``'s token predates a cut of its user's access."""
        cut = self._cut.get(principal.subject)
        if cut is None:
            return False
        if time.time() - cut > RETENTION_SECONDS:
            self._cut.pop(principal.subject, None)
            return False
        exact = principal.claims.get("iat_ms")  # user-service's tokens carry it
        if isinstance(exact, int) and not isinstance(exact, bool):
            return exact / 1000 <= cut
        issued = principal.claims.get("iat")
        return not isinstance(issued, int | float) or issued <= cut

    def note(self, message: str | bytes) -> None:
        """Record one announcement (``"<user id> <unix time>"``); malformed ones are ignored."""
        text = message.decode() if isinstance(message, bytes) else message
        try:
            user, when = text.split()
            uuid.UUID(user)
            cut = float(when)
        except ValueError:
            logger.warning("ignoring a malformed user revocation announcement")
            return
        self._cut[user] = max(cut, self._cut.get(user, 0.0))

    async def load(self, redis: Redis) -> None:
        """Read the announcements still kept in Redis (made while we were not listening)."""
        async for key in redis.scan_iter(match=f"{KEY_PREFIX}*", count=500):
            value = await redis.get(key)
            name = key.decode() if isinstance(key, bytes) else str(key)
            if value is not None:
                text = value.decode() if isinstance(value, bytes) else str(value)
                self.note(f"{name.removeprefix(KEY_PREFIX)} {text}")

    async def listen(self, redis: Redis) -> None:
        """Follow the channel until cancelled, reconnecting (and reloading) after an error.

        It polls (``get_message`` with a timeout) instead of blocking in ``listen()`` and checks
        :func:`~fedimpute_shared.tasks.stopping` each round: a cancellation swallowed by a
        read's timeout (Python 3.11) then still ends it within a second, where a blocked
        ``listen()`` kept a stopped app's process (and pytest's event loop) waiting forever.
        """
        while not stopping():
            pubsub: Any = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REVOKED_USERS_CHANNEL)
                await self.load(redis)
                while not stopping():
                    message = await pubsub.get_message(timeout=_POLL_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self.note(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if stopping():
                    break
                logger.warning("user revocations: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                # Bounded: closing a subscription cancelled mid-command can wait on its lock.
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await asyncio.wait_for(pubsub.aclose(), timeout=1)
