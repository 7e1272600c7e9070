"""Who may do what in the registry, as FastAPI dependencies.

Reads need a logged-in user whose token carries ``services:read``; writes need the ``admin`` or
``service_admin`` role *and* ``services:write`` (so an admin's narrowly scoped API token cannot
write); hard deletion is for ``admin`` only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from fedimpute_shared.auth import CurrentUser, Principal, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Role, Scope
from fedimpute_shared.problems import Forbidden
from service_registry.config import Settings

WRITER_ROLES = (Role.ADMIN, Role.SERVICE_ADMIN)


async def _writer(user: CurrentUser) -> Principal:
    if not user.has_role(*WRITER_ROLES):
        raise Forbidden("changing the registry needs the role admin or service_admin")
    if not user.has_scope(Scope.SERVICES_WRITE):
        raise Forbidden("this token lacks the scope services:write")
    return user


Reader = Annotated[Principal, Depends(require_scopes(Scope.SERVICES_READ))]
Writer = Annotated[Principal, Depends(_writer)]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
