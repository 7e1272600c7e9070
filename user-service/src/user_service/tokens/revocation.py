"""Announcing revoked API tokens on Redis, so every gateway evicts its cached exchange at once.

Contract (api-gateway relies on it): on channel ``API_TOKEN_REVOKED_CHANNEL`` (default
``fedimpute:api-token-revoked``) each message is one API token id (a UUID string). It is sent
after the revocation has been committed (a background task runs after the response), so a
gateway that re-exchanges the token at once is refused. Also sent for every live token of a user
who is deactivated or loses a role, since the cached JWT carries the old scopes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.revocation import announce_user_revoked
from user_service.dependencies import RedisDep, SettingsDep
from user_service.tokens import repository

logger = logging.getLogger(__name__)


async def announce_revoked(
    redis: Redis | None, channel: str, token_ids: Iterable[uuid.UUID]
) -> None:
    ids = [str(t) for t in token_ids]
    if not ids:
        return
    if redis is None:
        logger.warning("no Redis configured: %d API token revocation(s) not announced", len(ids))
        return
    try:
        for token_id in ids:
            await redis.publish(channel, token_id)
    except RedisError as exc:
        # The gateway's cache entry still expires with the short-lived JWT it holds.
        logger.warning("could not announce API token revocation: %s", exc)


async def announce_user(redis: Redis | None, user_id: uuid.UUID) -> None:
    """After the commit (a background task): tokens issued until now carry the old access."""
    if redis is None:
        logger.warning("no Redis configured: the access cut of user %s not announced", user_id)
        return
    try:
        await announce_user_revoked(redis, user_id)
    except RedisError as exc:
        # The services still refuse the user's tokens when they expire (at most an hour).
        logger.warning("could not announce the access cut of user %s: %s", user_id, exc)


@dataclass
class Revocations:
    """Announcements a request schedules; they run after its response, so after its commit."""

    redis: Redis | None
    channel: str
    background: BackgroundTasks

    def tokens(self, token_ids: Iterable[uuid.UUID]) -> None:
        self.background.add_task(announce_revoked, self.redis, self.channel, list(token_ids))

    async def user_tokens(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """A user whose access was cut (deactivated, a role revoked): every live API token
        (the gateways' cached JWTs carry the old scopes), and every access token issued until
        now, in every service (fedimpute_shared.revocation; issue 10, item 19)."""
        self.tokens(await repository.live_ids(session, user_id))
        self.background.add_task(announce_user, self.redis, user_id)


async def _revocations(
    settings: SettingsDep, redis: RedisDep, background: BackgroundTasks
) -> Revocations:
    return Revocations(redis, settings.api_token_revoked_channel, background)


RevocationsDep = Annotated[Revocations, Depends(_revocations)]
