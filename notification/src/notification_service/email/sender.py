"""The email sender: claims due queued emails, renders them (opening an account email's
sealed token only now), sends them, and records each outcome (sent, retried with back-off,
or failed for good). The sealed token is purged once the email is sent or finally failed."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.sealed import SealedSecretError, open_sealed
from notification_service.config import Settings
from notification_service.delivery import Attempt, RetryPolicy, claim_due, record_attempt
from notification_service.email.mailer import Mailer, Outgoing
from notification_service.events.catalog import spec_for
from notification_service.metrics import NotificationMetrics
from notification_service.models import Channel, DeliveryStatus, EmailMessage
from notification_service.templates import service as templates
from notification_service.templates.engine import RenderError
from notification_service.templates.samples import account_action_url

__all__ = ["EmailSender"]

logger = logging.getLogger(__name__)


class EmailSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        settings: Settings,
        metrics: NotificationMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._mailer = mailer
        self._settings = settings
        self._metrics = metrics
        self._policy = RetryPolicy(
            settings.email_max_attempts,
            settings.email_retry_base_seconds,
            settings.email_retry_max_seconds,
        )

    async def send_due(self) -> int:
        """One round: every due email (a batch at most); how many were attempted."""
        async with session_scope(self._sessionmaker) as session:
            claimed = await claim_due(
                session,
                EmailMessage,
                now=utcnow(),
                lease_seconds=self._settings.delivery_lease_seconds,
                limit=self._settings.delivery_batch_size,
            )
        if not claimed:
            return 0
        outcomes: dict[uuid.UUID, Attempt] = {}
        ready: list[Outgoing] = []
        async with session_scope(self._sessionmaker) as session:
            for message in claimed:
                try:
                    ready.append(await self._render(session, message))
                except (RenderError, SealedSecretError) as exc:
                    outcomes[message.id] = Attempt(False, str(exc), permanent=True)
        if ready:
            outcomes |= await self._mailer.send_batch(ready)
        await self._record(outcomes)
        return len(claimed)

    async def _render(self, session: AsyncSession, message: EmailMessage) -> Outgoing:
        context: dict[str, Any] = dict(message.context)
        if message.sealed_token is not None:
            context["action_url"] = self._action_url(message)
        parts = await templates.render(session, message.template, Channel.EMAIL, context)
        return Outgoing(
            message.id,
            message.to_address,
            parts["subject"],
            parts["text"],
            templates.wrap_html(parts["subject"], parts["html"]),
        )

    def _action_url(self, message: EmailMessage) -> str:
        """The one-time link, built the moment the email is sent; never stored or logged."""
        spec = spec_for(message.template)
        key = self._settings.delivery_private_key
        if spec is None or spec.action_path is None:
            raise SealedSecretError(f"{message.template} emails carry no one-time link")
        if key is None:
            raise SealedSecretError("DELIVERY_PRIVATE_KEY is not set: cannot open the token")
        assert message.sealed_token is not None
        token = open_sealed(key.get_secret_value(), message.sealed_token)
        return account_action_url(self._settings.public_base_url, spec.action_path, token)

    async def _record(self, outcomes: dict[uuid.UUID, Attempt]) -> None:
        now = utcnow()
        async with session_scope(self._sessionmaker) as session:
            for message_id, attempt in outcomes.items():
                message = await session.get(EmailMessage, message_id)
                if message is None:
                    continue
                status = record_attempt(message, attempt, self._policy, now)
                if status is not DeliveryStatus.PENDING:
                    message.sealed_token = None
                outcome = {"pending": "retry"}.get(status, str(status))
                self._metrics.deliveries.labels("email", outcome).inc()
                if status is DeliveryStatus.FAILED:
                    logger.warning(
                        "email failed for good",
                        extra={"email_id": str(message_id), "error": attempt.error},
                    )
