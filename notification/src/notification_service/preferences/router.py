"""The current user's notification preferences."""

from __future__ import annotations

from fastapi import APIRouter

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import Unprocessable, problem_responses
from notification_service.dependencies import Reader, Writer
from notification_service.preferences import service
from notification_service.preferences.schemas import PreferencesIn, PreferencesOut, QuietHours

router = APIRouter(prefix="/notifications/preferences", tags=["preferences"])


def _out(prefs: service.Preferences) -> PreferencesOut:
    quiet = (
        QuietHours(start=prefs.quiet_start, end=prefs.quiet_end)
        if prefs.quiet_start is not None and prefs.quiet_end is not None
        else None
    )
    return PreferencesOut(
        user_id=prefs.user_id,
        channels=prefs.channels,
        digest=prefs.digest,
        digest_hour=prefs.digest_hour,
        timezone=prefs.timezone,
        quiet_hours=quiet,
    )


@router.get("", summary="My notification preferences (defaults until I change them)")
async def get_preferences(session: SessionDep, user: Reader) -> PreferencesOut:
    return _out(await service.for_user(session, user.user_id))


@router.patch(
    "", summary="Change my notification preferences", responses=problem_responses(Unprocessable)
)
async def update_preferences(
    body: PreferencesIn, session: SessionDep, user: Writer
) -> PreferencesOut:
    return _out(await service.update(session, user.user_id, body))
