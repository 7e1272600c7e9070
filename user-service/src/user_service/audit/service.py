"""Writing audit entries. Callers pass the session whose transaction the entry belongs to:

- the request's session for an action that changes data (the entry commits with the change);
- an independent ``session_scope`` (committed at once) for a *refused*
  action, whose request rolls back but whose entry must stay (a failed login, a reused token).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from user_service.audit.actions import Action, Outcome
from user_service.models import AuditEvent
from user_service.request_meta import RequestMeta

SOURCE = "user-service"


@dataclass(frozen=True)
class Actor:
    type: str  # user | service | anonymous | system
    id: str | None = None

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Actor:
        return cls("user", str(user_id))


ANONYMOUS = Actor("anonymous")
SYSTEM = Actor("system")


async def record(
    session: AsyncSession,
    action: Action,
    *,
    actor: Actor,
    meta: RequestMeta | None,
    outcome: Outcome = Outcome.SUCCESS,
    target_user: uuid.UUID | None = None,
    target: tuple[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Stage one entry. ``target_user`` is the usual target; ``target`` any (type, id) pair."""
    target_type, target_id = target or (("user", str(target_user)) if target_user else (None, None))
    event = AuditEvent(
        action=str(action),
        outcome=str(outcome),
        actor_type=actor.type,
        actor_id=actor.id,
        target_type=target_type,
        target_id=target_id,
        ip=meta.ip if meta else None,
        user_agent=meta.user_agent if meta else None,
        request_id=meta.request_id if meta else None,
        source_service=SOURCE,
        details=details or {},
    )
    session.add(event)
    return event
