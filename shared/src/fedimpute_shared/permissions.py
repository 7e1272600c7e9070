"""The platform's roles and permission names: the contract between user-service and the rest.

user-service stores roles and their permissions in its database, seeded from
:data:`DEFAULT_ROLE_PERMISSIONS`, and writes the caller's permissions into the ``scopes`` claim
of each access token (an API token carries the subset its owner chose). Services check scope
names from here, never string literals of their own.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ADMIN_SCOPE",
    "DEFAULT_ROLE_PERMISSIONS",
    "Role",
    "Scope",
    "scopes_for_roles",
]


class Role(StrEnum):
    ADMIN = "admin"
    SERVICE_ADMIN = "service_admin"
    RESEARCHER = "researcher"
    VIEWER = "viewer"


class Scope(StrEnum):
    SERVICES_READ = "services:read"
    SERVICES_WRITE = "services:write"
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    FILES_READ = "files:read"
    FILES_WRITE = "files:write"
    NOTIFICATIONS_READ = "notifications:read"
    NOTIFICATIONS_WRITE = "notifications:write"
    CREDENTIALS_READ = "credentials:read"
    CREDENTIALS_WRITE = "credentials:write"
    MONITORING_READ = "monitoring:read"
    USERS_ADMIN = "users:admin"
    AUDIT_READ = "audit:read"


# What a token needs, beside the ``admin`` role, to act as an administrator anywhere: on other
# users' files, jobs and accounts, on templates and dead letters. Only admins hold it, and an
# API token carries it only when its owner chose it (fedimpute_shared.auth.Principal.is_admin).
ADMIN_SCOPE = Scope.USERS_ADMIN

_VIEWER = frozenset(
    {
        Scope.SERVICES_READ,
        Scope.JOBS_READ,
        Scope.FILES_READ,
        Scope.NOTIFICATIONS_READ,
        Scope.MONITORING_READ,
    }
)
_RESEARCHER = _VIEWER | {
    Scope.JOBS_WRITE,
    Scope.FILES_WRITE,
    Scope.NOTIFICATIONS_WRITE,
    Scope.CREDENTIALS_READ,
    Scope.CREDENTIALS_WRITE,
}
_SERVICE_ADMIN = _RESEARCHER | {Scope.SERVICES_WRITE}

DEFAULT_ROLE_PERMISSIONS: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset(Scope),
    Role.SERVICE_ADMIN: frozenset(_SERVICE_ADMIN),
    Role.RESEARCHER: frozenset(_RESEARCHER),
    Role.VIEWER: _VIEWER,
}


def scopes_for_roles(roles: set[str] | frozenset[str]) -> frozenset[str]:
    """The union of the default permissions of ``roles`` (unknown roles grant nothing)."""
    granted: set[str] = set()
    for role in roles:
        if role in Role.__members__.values():
            granted |= {str(s) for s in DEFAULT_ROLE_PERMISSIONS[Role(role)]}
    return frozenset(granted)
