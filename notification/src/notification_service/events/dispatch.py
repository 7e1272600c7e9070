"""What one event produces, inside the transaction that records it as processed: in-app
notifications, queued emails or digest entries, webhook deliveries, and the live pushes to
send once that transaction has committed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import Event, JobStatusChanged
from notification_service.config import Settings
from notification_service.email.queue import add_to_digest, queue_email
from notification_service.events import repository
from notification_service.events.catalog import AccountMail, Audience, EventSpec
from notification_service.live.broker import Push
from notification_service.models import Channel
from notification_service.notifications import service as notifications
from notification_service.preferences import service as preferences
from notification_service.recipients import Contact, Directory
from notification_service.templates import service as templates
from notification_service.templates.context import event_context
from notification_service.webhooks import service as webhooks

__all__ = ["Dispatcher"]


@dataclass
class Dispatcher:
    directory: Directory
    settings: Settings

    async def dispatch(self, session: AsyncSession, spec: EventSpec, event: Event) -> list[Push]:
        told = spec.told_as(event)
        if told is not None and not await repository.tell_once(session, *told, event.occurred_at):
            return []  # its watchers were told this state already
        if spec.audience is Audience.ACCOUNT:
            assert isinstance(event, AccountMail)
            await self._account_email(session, spec, event)
            return []
        if spec.live_status:
            return [_job_status_push(event, self.settings.public_base_url, spec)]
        pushes: list[Push] = []
        if spec.audience is Audience.ADMINS:
            for contact in await self.directory.holders(spec.roles):
                pushes += await self._deliver(session, spec, event, contact.id, contact)
        else:
            owner = getattr(event, "owner_id", None)
            if isinstance(owner, uuid.UUID):
                pushes += await self._deliver(session, spec, event, owner, None)
        return pushes

    async def _account_email(
        self, session: AsyncSession, spec: EventSpec, event: AccountMail
    ) -> None:
        """An account email goes to the address in the event, whatever the preferences; the
        token stays sealed in the queue until the moment the email is sent."""
        context = event_context(
            event,
            event_type=spec.event_type,
            app_url=self.settings.public_base_url,
            link_path=None,
            username=event.username,
        )
        await queue_email(
            session,
            to_address=event.email,
            template=spec.event_type,
            context=context,
            not_before=utcnow(),
            user_id=event.user_id,
            event_id=event.event_id,
            sealed_token=event.sealed_token,
        )

    async def _deliver(
        self,
        session: AsyncSession,
        spec: EventSpec,
        event: Event,
        user_id: uuid.UUID,
        contact: Contact | None,
    ) -> list[Push]:
        prefs = await preferences.for_user(session, user_id)
        wanted = {ch for ch in spec.channels if prefs.wants(spec.category, ch)}
        if Channel.EMAIL in wanted and contact is None:
            contact = await self.directory.contact(user_id)
        if contact is not None and not contact.is_active:
            return []
        link = spec.link(event)
        context = event_context(
            event,
            event_type=spec.event_type,
            app_url=self.settings.public_base_url,
            link_path=link,
            username=contact.username if contact else None,
        )
        pushes: list[Push] = []
        if Channel.IN_APP in wanted:
            rendered = await templates.render(session, spec.event_type, Channel.IN_APP, context)
            created = await notifications.create(
                session,
                user_id=user_id,
                category=spec.category,
                event_type=spec.event_type,
                event_id=event.event_id,
                title=rendered["title"],
                body=rendered["body"],
                link=context["link"],
                data=_notification_data(event),
            )
            if created is not None:
                pushes.append(notifications.push_of(created))
        if Channel.EMAIL in wanted and contact is not None:
            await self._email(session, spec, event, prefs, contact, context)
        if Channel.WEBHOOK in wanted:
            rendered = await templates.render(session, spec.event_type, Channel.WEBHOOK, context)
            await webhooks.queue_event(
                session,
                user_id=user_id,
                event_id=event.event_id,
                event_type=spec.event_type,
                occurred_at=event.occurred_at.isoformat(),
                summary=rendered["text"].strip(),
                link=context["link"],
                data=context["event"],
            )
        return pushes

    async def _email(
        self,
        session: AsyncSession,
        spec: EventSpec,
        event: Event,
        prefs: preferences.Preferences,
        contact: Contact,
        context: dict[str, Any],
    ) -> None:
        if prefs.digests(spec.category):
            await add_to_digest(
                session,
                user_id=contact.id,
                event_id=event.event_id,
                event_type=spec.event_type,
                context=context,
            )
            return
        await queue_email(
            session,
            to_address=contact.email,
            template=spec.event_type,
            context=context,
            not_before=prefs.email_not_before(spec.category, utcnow()),
            user_id=contact.id,
            event_id=event.event_id,
        )


def _notification_data(event: Event) -> dict[str, Any]:
    """The ids a client needs to act on a notification (the job, the file, the service)."""
    fields = event.model_dump(mode="json")
    return {k: v for k, v in fields.items() if k.endswith("_id") and k not in ("event_id",)}


def _job_status_push(event: Event, app_url: str, spec: EventSpec) -> Push:
    assert isinstance(event, JobStatusChanged)
    return Push(
        event.owner_id,
        {
            "type": "job_status",
            "job_id": str(event.job_id),
            "job_name": event.job_name,
            "service_slug": event.service_slug,
            "previous_status": event.previous_status,
            "status": event.status,
            "message": event.message,
            "occurred_at": event.occurred_at.isoformat(),
            "link": f"{app_url}{spec.link(event)}",
        },
    )
