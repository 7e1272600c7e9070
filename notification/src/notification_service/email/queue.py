"""Putting emails in the queue the sender works through (in the caller's transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import DigestEntry, EmailMessage


async def queue_email(
    session: AsyncSession,
    *,
    to_address: str,
    template: str,
    context: dict[str, Any],
    not_before: datetime,
    user_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
    sealed_token: str | None = None,
) -> bool:
    """Queue one email; False when this event was already queued to this address."""
    stmt = (
        insert(EmailMessage)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            to_address=to_address,
            template=template,
            context=context,
            sealed_token=sealed_token,
            event_id=event_id,
            next_attempt_at=not_before,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "to_address"])
        .returning(EmailMessage.id)
    )
    return (await session.scalar(stmt)) is not None


async def add_to_digest(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    context: dict[str, Any],
) -> None:
    """Keep an event for the user's next daily digest (once per event)."""
    await session.execute(
        insert(DigestEntry)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            event_id=event_id,
            event_type=event_type,
            context=context,
        )
        .on_conflict_do_nothing(index_elements=["event_id", "user_id"])
    )
