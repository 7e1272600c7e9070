"""Who wants what: each user's channels per category, digest and quiet hours, and the
defaults a user who never chose gets.

Defaults: every category in-app, by email and to webhooks (an event type goes by email only
where it has an email template: completed or failed jobs, expiring files, deactivated services,
alerts, account emails), immediately, no quiet hours. Security emails cannot be turned off and
are never held for quiet hours or a digest: a password-reset link that arrives tomorrow is
useless.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.problems import Unprocessable
from notification_service.models import Category, Channel, Digest, Preference
from notification_service.preferences.schemas import PreferencesIn

__all__ = [
    "DEFAULT_CHANNELS",
    "Preferences",
    "for_user",
    "update",
]


def _defaults() -> dict[str, dict[str, bool]]:
    table = {str(c): {str(ch): True for ch in Channel} for c in Category}
    table[Category.SECURITY][Channel.WEBHOOK] = False
    return table


DEFAULT_CHANNELS: dict[str, dict[str, bool]] = _defaults()
_CHANNELS = frozenset(str(c) for c in Channel)


@dataclass(frozen=True)
class Preferences:
    """A user's effective preferences (stored choices over the defaults)."""

    user_id: uuid.UUID
    channels: dict[str, dict[str, bool]] = field(default_factory=_defaults)
    digest: Digest = Digest.IMMEDIATE
    digest_hour: int = 8
    timezone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None

    def wants(self, category: Category, channel: Channel) -> bool:
        if category is Category.SECURITY and channel is Channel.EMAIL:
            return True
        return self.channels.get(category, {}).get(channel, DEFAULT_CHANNELS[category][channel])

    def digests(self, category: Category) -> bool:
        """Whether an email of ``category`` waits for the daily digest."""
        return self.digest is Digest.DAILY and category is not Category.SECURITY

    def email_not_before(self, category: Category, now: datetime) -> datetime:
        """When an email of ``category`` may be sent: now, or the end of quiet hours."""
        if category is Category.SECURITY or self.quiet_start is None or self.quiet_end is None:
            return now
        local = now.astimezone(ZoneInfo(self.timezone))
        start, end, clock = self.quiet_start, self.quiet_end, local.time()
        quiet = start <= clock < end if start <= end else (clock >= start or clock < end)
        if not quiet:
            return now
        ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if ends <= local:
            ends += timedelta(days=1)
        return ends.astimezone(now.tzinfo)

    def digest_due(self, now: datetime, since: datetime) -> bool:
        """Whether a digest hour has passed since ``since`` (the last digest, or the oldest
        entry waiting for the first one)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        today = local.replace(hour=self.digest_hour, minute=0, second=0, microsecond=0)
        slot = today if local >= today else today - timedelta(days=1)
        return since < slot


def _from_row(row: Preference) -> Preferences:
    channels = _defaults()
    for category, choices in row.channels.items():
        if category in channels:
            channels[category].update({k: v for k, v in choices.items() if k in _CHANNELS})
    return Preferences(
        user_id=row.user_id,
        channels=channels,
        digest=row.digest,
        digest_hour=row.digest_hour,
        timezone=row.timezone,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
    )


async def for_user(session: AsyncSession, user_id: uuid.UUID) -> Preferences:
    row = await session.get(Preference, user_id)
    return Preferences(user_id) if row is None else _from_row(row)


async def update(session: AsyncSession, user_id: uuid.UUID, body: PreferencesIn) -> Preferences:
    """Apply the fields given in ``body`` (the others keep their value)."""
    row = await session.get(Preference, user_id)
    if row is None:
        row = Preference(user_id=user_id, channels={}, digest=Digest.IMMEDIATE)
        row.digest_hour, row.timezone = 8, "UTC"
        session.add(row)
    given = body.model_fields_set
    if "channels" in given and body.channels is not None:
        merged = {k: dict(v) for k, v in row.channels.items()}
        for category, choices in body.channels.items():
            merged.setdefault(category, {}).update(choices.model_dump(exclude_none=True))
        if merged.get(Category.SECURITY, {}).get(Channel.EMAIL) is False:
            raise Unprocessable("security emails cannot be turned off")
        row.channels = merged
    for name in ("digest", "digest_hour", "timezone"):
        if name in given and getattr(body, name) is not None:
            setattr(row, name, getattr(body, name))
    if "quiet_hours" in given:
        quiet = body.quiet_hours
        row.quiet_start = quiet.start if quiet else None
        row.quiet_end = quiet.end if quiet else None
    await session.flush()
    return _from_row(row)
