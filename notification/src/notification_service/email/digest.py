"""The daily digest: users who chose it get one email a day (at their ``digest_hour``, in
their time zone) listing what was kept for them; a user who went back to immediate emails
gets what was waiting at the next round."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from notification_service.config import Settings
from notification_service.email.queue import queue_email
from notification_service.models import Channel, Digest, DigestEntry, Preference
from notification_service.preferences import service as preferences
from notification_service.recipients import Directory
from notification_service.templates import service as templates
from notification_service.templates.samples import DIGEST

__all__ = ["DigestWorker"]

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 200


class DigestWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        directory: Directory,
        settings: Settings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._directory = directory
        self._settings = settings

    async def run_once(self) -> int:
        """Queue the digests that are due; how many were queued."""
        async with session_scope(self._sessionmaker) as session:
            users = list(
                (await session.scalars(select(DigestEntry.user_id).distinct().limit(1000))).all()
            )
        queued = 0
        for user_id in users:
            async with session_scope(self._sessionmaker) as session:
                queued += await self._digest(session, user_id)
        return queued

    async def _digest(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        row = await session.get(Preference, user_id, with_for_update=True)
        prefs = await preferences.for_user(session, user_id)
        now = utcnow()
        entries = list(
            (
                await session.scalars(
                    select(DigestEntry)
                    .where(DigestEntry.user_id == user_id)
                    .order_by(DigestEntry.created_at)
                    .limit(_MAX_ENTRIES)
                )
            ).all()
        )
        if not entries:
            return 0
        since = (row.last_digest_at if row is not None else None) or entries[0].created_at
        if prefs.digest is Digest.DAILY and not prefs.digest_due(now, since):
            return 0
        contact = await self._directory.contact(user_id)
        if contact is not None and contact.is_active:
            lines = []
            for entry in entries:
                parts = await templates.render(
                    session, entry.event_type, Channel.EMAIL, entry.context
                )
                lines.append({"subject": parts["subject"], "link": entry.context.get("link")})
            await queue_email(
                session,
                to_address=contact.email,
                template=DIGEST,
                context={
                    "username": contact.username,
                    "app_url": self._settings.public_base_url,
                    "entries": lines,
                },
                not_before=now,
                user_id=user_id,
            )
        await session.execute(
            delete(DigestEntry).where(DigestEntry.id.in_([e.id for e in entries]))
        )
        if row is not None:
            row.last_digest_at = now
        return 1 if contact is not None and contact.is_active else 0
