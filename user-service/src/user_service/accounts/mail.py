"""One-time email tokens and the account emails that carry them (sealed to notification)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import AccountMailEvent, add_to_outbox
from fedimpute_shared.sealed import seal
from user_service.accounts import repository
from user_service.config import Settings
from user_service.models import OneTimeToken, OutboxEvent, TokenPurpose, User
from user_service.security.opaque import hash_secret, new_secret

logger = logging.getLogger(__name__)

PRODUCER = "user-service"


async def new_one_time_token(
    session: AsyncSession, user: User, purpose: TokenPurpose, ttl_seconds: int
) -> tuple[str, OneTimeToken]:
    await repository.spend_open_tokens(session, user.id, purpose)
    raw = new_secret()
    token = OneTimeToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_secret(raw),
        email=user.email,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    session.add(token)
    return raw, token


async def send_account_mail(
    session: AsyncSession,
    settings: Settings,
    model: type[AccountMailEvent],
    user: User,
    raw: str,
    token: OneTimeToken,
    **extra: Any,
) -> None:
    """Stage an account email event: the one-time token sealed to the notification service's
    delivery key, so the outbox row (and the stream entry, and any log) holds nothing usable;
    the row is pruned soon after it is published (``OUTBOX_RETENTION_HOURS``)."""
    key = settings.notification_delivery_public_key
    if key is None:
        logger.warning(
            "no NOTIFICATION_DELIVERY_PUBLIC_KEY: %s for user %s not sent",
            model.event_type,
            user.id,
        )
        return
    await add_to_outbox(
        session,
        OutboxEvent,
        model(
            producer=PRODUCER,
            user_id=user.id,
            email=token.email,
            username=user.username,
            sealed_token=seal(key, raw),
            expires_at=token.expires_at,
            **extra,
        ),
    )
