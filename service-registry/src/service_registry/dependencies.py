"""Who may do what in the registry, as FastAPI dependencies.

Reads need a logged-in user whose token carries ``services:read``; writes need the ``admin`` or
``service_admin`` role *and* ``services:write`` (so an admin's narrowly scoped API token cannot
write); hard deletion is for ``admin`` only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from fedimpute_shared.auth import Principal, require_role_and_scope, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Role, Scope
from service_registry.config import Settings
from service_registry.services.listing import RenderedServices

WRITER_ROLES = (Role.ADMIN, Role.SERVICE_ADMIN)


Reader = Annotated[Principal, Depends(require_scopes(Scope.SERVICES_READ))]
Writer = Annotated[Principal, Depends(require_role_and_scope(WRITER_ROLES, Scope.SERVICES_WRITE))]


def can_manage(user: Principal) -> bool:
    """What a writer may see beyond readers (deleted services): the role *and* the scope."""
    return user.holds(WRITER_ROLES, Scope.SERVICES_WRITE)


SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
RenderedDep = Annotated[RenderedServices, Depends(from_state("rendered_services"))]
"""The services' JSON kept per row version, for ``GET /services`` (services/listing.py)."""
