"""Names of the actions user-service writes to the audit log (other services use their own)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    LOGIN = "auth.login"
    LOCKOUT = "auth.lockout"
    ACCOUNT_UNLOCKED = "auth.unlocked"
    LOGOUT = "auth.logout"
    REFRESH_REUSED = "auth.refresh_token_reused"
    REGISTERED = "account.registered"
    # Self-registration with an address that has an account (its owner is emailed).
    REGISTRATION_ATTEMPTED = "account.registration_attempted"
    PROFILE_UPDATED = "account.profile_updated"
    PASSWORD_CHANGED = "account.password_changed"
    PASSWORD_RESET_REQUESTED = "account.password_reset_requested"
    PASSWORD_RESET = "account.password_reset"
    EMAIL_CHANGED = "account.email_changed"
    EMAIL_VERIFIED = "account.email_verified"
    DEACTIVATED = "account.deactivated"
    ACTIVATED = "account.activated"
    ADMIN_CREATED = "account.admin_created"
    ROLE_GRANTED = "role.granted"
    ROLE_REVOKED = "role.revoked"
    API_TOKEN_CREATED = "api_token.created"
    API_TOKEN_REVOKED = "api_token.revoked"
    API_TOKEN_REFUSED = "api_token.exchange_refused"
    SERVICE_TOKEN_REFUSED = "service_token.refused"
    CREDENTIAL_STORED = "credential.stored"
    CREDENTIAL_DELETED = "credential.deleted"
    CREDENTIAL_READ = "credential.read"
    CREDENTIAL_VERIFIED = "credential.verified"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


# Action families only user-service writes: another service appending one of these would make
# its entry pass for user-service's own record (a forged login in a victim's audit log).
RESERVED_PREFIXES: frozenset[str] = frozenset(a.value.split(".", 1)[0] + "." for a in Action)


def is_reserved(action: str) -> bool:
    return any(action.startswith(prefix) for prefix in RESERVED_PREFIXES)
