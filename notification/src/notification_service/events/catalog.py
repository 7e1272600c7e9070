"""Every event type the notification service knows: its payload model, who is told, in which
category, over which channels (each has a default template), and where its link points.

An entry on the stream whose type is neither here nor in :data:`IGNORED` is dead-lettered:
a producer sends something this service was not taught, and an admin should see it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fedimpute_shared.events import (
    AlertRaised,
    AlertResolved,
    Event,
    FileExpiring,
    FileValidated,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobStatusChanged,
    ServiceDeactivated,
    ServiceHealthChanged,
)
from notification_service.models import Category, Channel

__all__ = [
    "CATALOG",
    "IGNORED",
    "AccountMail",
    "AccountUnlockMail",
    "Audience",
    "EventSpec",
    "spec_for",
]


class AccountMail(Event):
    """The contract of every account email event (docs/notification.md, "Account emails"):
    the one-time token arrives sealed to our delivery key; no other field is secret."""

    user_id: uuid.UUID
    email: str
    username: str
    sealed_token: str
    expires_at: datetime


class AccountUnlockMail(AccountMail):
    """``user.account_unlock_requested``: also when the lock ends by itself."""

    locked_until: datetime


class Audience(StrEnum):
    OWNER = "owner"  # the user the event names (owner_id)
    ADMINS = "admins"  # every active admin (asked from user-service)
    ACCOUNT = "account"  # the address in the event itself, whatever the preferences


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    model: type[Event]
    category: Category
    audience: Audience
    channels: frozenset[Channel]  # where it may go (each has a default template)
    versions: frozenset[int] = frozenset({1})
    # The app page it links to, from the event (joined to PUBLIC_BASE_URL).
    link: Callable[[Event], str | None] = lambda event: None
    # Pushed live to its owner's WebSockets as a status message (not stored).
    live_status: bool = False
    # The state that, told once, is not told again: (subject id, topic, state).
    told_as: Callable[[Event], tuple[uuid.UUID, str, str] | None] = lambda event: None
    # Account emails: the page the sealed token is for ({PUBLIC_BASE_URL}{path}?token=...).
    action_path: str | None = None
    # Roles told, for Audience.ADMINS.
    roles: tuple[str, ...] = ("admin",)


def _job_link(event: Event) -> str:
    assert isinstance(event, JobStatusChanged | JobCompleted | JobFailed | JobCancelled)
    return f"/jobs/{event.job_id}"


def _file_link(event: Event) -> str:
    assert isinstance(event, FileValidated | FileExpiring)
    return f"/files/{event.file_id}"


def _service_link(event: Event) -> str:
    assert isinstance(event, ServiceHealthChanged | ServiceDeactivated)
    return f"/services/{event.service_slug}"


def _alert_link(event: Event) -> str:
    assert isinstance(event, AlertRaised | AlertResolved)
    return f"/monitoring/alerts/{event.alert_id}"


def _alert_state(event: Event) -> tuple[uuid.UUID, str, str]:
    assert isinstance(event, AlertRaised | AlertResolved)
    return event.alert_id, "alert", event.event_type


def _job_status(event: Event) -> tuple[uuid.UUID, str, str]:
    assert isinstance(event, JobStatusChanged)
    return event.job_id, "status", event.status


def _job_outcome(event: Event) -> tuple[uuid.UUID, str, str]:
    assert isinstance(event, JobCompleted | JobFailed | JobCancelled)
    return event.job_id, "outcome", event.event_type


def _service_health(event: Event) -> tuple[uuid.UUID, str, str]:
    assert isinstance(event, ServiceHealthChanged)
    return event.service_id, "health", event.status


_ALL = frozenset(Channel)
_NO_EMAIL = frozenset({Channel.IN_APP, Channel.WEBHOOK})
_EMAIL_ONLY = frozenset({Channel.EMAIL})


def _account(
    event_type: str, path: str, version: int, model: type[AccountMail] = AccountMail
) -> EventSpec:
    return EventSpec(
        event_type,
        model,
        Category.SECURITY,
        Audience.ACCOUNT,
        _EMAIL_ONLY,
        versions=frozenset({version}),
        action_path=path,
    )


_SPECS = [
    EventSpec(
        "job.status_changed",
        JobStatusChanged,
        Category.JOBS,
        Audience.OWNER,
        frozenset(),
        link=_job_link,
        live_status=True,
        told_as=_job_status,
    ),
    EventSpec(
        "job.completed",
        JobCompleted,
        Category.JOBS,
        Audience.OWNER,
        _ALL,
        link=_job_link,
        told_as=_job_outcome,
    ),
    EventSpec(
        "job.failed",
        JobFailed,
        Category.JOBS,
        Audience.OWNER,
        _ALL,
        link=_job_link,
        told_as=_job_outcome,
    ),
    EventSpec(
        "job.cancelled",
        JobCancelled,
        Category.JOBS,
        Audience.OWNER,
        _NO_EMAIL,
        link=_job_link,
        told_as=_job_outcome,
    ),
    EventSpec(
        "file.validated",
        FileValidated,
        Category.FILES,
        Audience.OWNER,
        _NO_EMAIL,
        link=_file_link,
    ),
    EventSpec("file.expiring", FileExpiring, Category.FILES, Audience.OWNER, _ALL, link=_file_link),
    EventSpec(
        "service.health_changed",
        ServiceHealthChanged,
        Category.SERVICES,
        Audience.ADMINS,
        _NO_EMAIL,
        link=_service_link,
        told_as=_service_health,
        roles=("admin", "service_admin"),
    ),
    EventSpec(
        "service.deactivated",
        ServiceDeactivated,
        Category.SERVICES,
        Audience.ADMINS,
        _ALL,
        link=_service_link,
        roles=("admin", "service_admin"),
    ),
    EventSpec(
        "alert.raised",
        AlertRaised,
        Category.ALERTS,
        Audience.ADMINS,
        _ALL,
        link=_alert_link,
        told_as=_alert_state,
    ),
    EventSpec(
        "alert.resolved",
        AlertResolved,
        Category.ALERTS,
        Audience.ADMINS,
        _ALL,
        link=_alert_link,
        told_as=_alert_state,
    ),
    # Version 1 of these two carried the token in clear: refused (dead-lettered) on purpose.
    _account("user.password_reset_requested", "/reset-password", 2),
    _account("user.email_verification_requested", "/verify-email", 2),
    _account("user.account_unlock_requested", "/unlock", 1, AccountUnlockMail),
    # Someone tried to register with this address: if it was the owner, the link resets the
    # password.
    _account("user.registration_attempted", "/reset-password", 1),
]

CATALOG: dict[str, EventSpec] = {spec.event_type: spec for spec in _SPECS}

# Event types on the stream that concern no one here (acknowledged without effect).
IGNORED: frozenset[str] = frozenset()


def spec_for(event_type: str) -> EventSpec | None:
    return CATALOG.get(event_type)
