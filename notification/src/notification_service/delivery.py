"""What the email and webhook senders share: claiming due rows under a lease, and the
retry schedule (exponential back-off with jitter, then a final failed state)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.models import DeliveryState, DeliveryStatus, EmailMessage, WebhookDelivery

__all__ = ["Attempt", "RetryPolicy", "claim_due", "record_attempt"]

Row = TypeVar("Row", EmailMessage, WebhookDelivery)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: doubling from the base, capped, ±20 %."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return float(raw * random.uniform(0.8, 1.2))  # noqa: S311 (spreading retries, not crypto)


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended: ``ok``, or an error that is ``permanent`` or worth a retry."""

    ok: bool
    error: str | None = None
    permanent: bool = False


async def claim_due(
    session: AsyncSession, model: type[Row], *, now: datetime, lease_seconds: float, limit: int
) -> list[Row]:
    """Take up to ``limit`` due rows: their next attempt moves past the lease, so no other
    worker takes them meanwhile, and a crash leaves them due again after it."""
    due = (
        select(model.id)
        .where(model.status == DeliveryStatus.PENDING, model.next_attempt_at <= now)
        .order_by(model.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.scalars(
        update(model)
        .where(model.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + timedelta(seconds=lease_seconds), attempts=model.attempts + 1)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    return list(claimed.all())


def record_attempt(
    row: DeliveryState, attempt: Attempt, policy: RetryPolicy, now: datetime
) -> DeliveryStatus:
    """Apply an attempt's outcome to ``row``: sent, retried later, or failed for good."""
    row.last_error = attempt.error[:500] if attempt.error else None
    if attempt.ok:
        row.status, row.finished_at = DeliveryStatus.SENT, now
    elif attempt.permanent or row.attempts >= policy.max_attempts:
        row.status, row.finished_at = DeliveryStatus.FAILED, now
    else:
        row.next_attempt_at = now + timedelta(seconds=policy.delay(row.attempts))
    return row.status
