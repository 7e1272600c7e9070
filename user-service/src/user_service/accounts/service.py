"""Account logic: registration, profile, password and email changes, one-time email tokens,
and deactivation. Functions take a session and never commit."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import utcnow
from fedimpute_shared.events import (
    UserEmailVerificationRequested,
    UserPasswordResetRequested,
    UserRegistrationAttempted,
)
from fedimpute_shared.problems import (
    BadRequest,
    Conflict,
    FieldProblem,
    Unprocessable,
)
from user_service.accounts import repository
from user_service.accounts.mail import new_one_time_token, send_account_mail
from user_service.accounts.schemas import (
    EmailChange,
    PasswordChange,
    ProfileUpdate,
    RegisterIn,
    UserOut,
    normalize_email,
)
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.auth import throttle
from user_service.auth.service import check_current_password
from user_service.config import Settings
from user_service.models import TokenPurpose, User
from user_service.request_meta import RequestMeta
from user_service.roles import service as roles
from user_service.security.opaque import hash_secret
from user_service.security.passwords import Passwords, WeakPassword, check_strength
from user_service.tokens import repository as api_tokens
from user_service.tokens import sessions

logger = logging.getLogger(__name__)

PRODUCER = "user-service"
_BAD_EMAIL_TOKEN = "the link is invalid, expired or already used; ask for a new one"


def enforce_policy(
    password: str, settings: Settings, *, field: str, user_inputs: list[str | None]
) -> None:
    """422 naming ``field`` when ``password`` is too weak."""
    try:
        check_strength(
            password,
            user_inputs=user_inputs,
            min_length=settings.password_min_length,
            min_score=settings.password_min_score,
        )
    except WeakPassword as exc:
        raise Unprocessable(
            str(exc),
            title="Weak password",
            errors=[
                FieldProblem(
                    pointer=f"#/body/{field}",
                    field=f"body.{field}",
                    message=str(exc),
                    code="weak_password",
                )
            ],
        ) from None


async def register(
    session: AsyncSession,
    body: RegisterIn,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
    *,
    role: str | None = None,
    email_verified: bool = False,
) -> User:
    """A new account with the default role (or ``role``); asks to verify its email unless
    ``email_verified`` (an address given by an operator). An operator's call: a taken address
    is a 409 (the public route uses :func:`register_publicly`)."""
    enforce_policy(
        body.password,
        settings,
        field="password",
        user_inputs=[body.username, body.email, body.full_name],
    )
    await _ensure_free(session, username=body.username, email=body.email)
    return await _create(session, body, passwords, settings, meta, role, email_verified)


async def register_publicly(
    session: AsyncSession,
    body: RegisterIn,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
) -> UserOut:
    """Self-registration, which answers the same whether or not the address has an account
    (issue 10, item 17): a known address gets a lookalike answer for an account that does not
    exist, after the same work (a password hash, a token, an event), and its owner is told by
    email (``user.registration_attempted``, with a reset link in case it was them). A taken
    *username* is still a 409: usernames are public, addresses are not."""
    enforce_policy(
        body.password,
        settings,
        field="password",
        user_inputs=[body.username, body.email, body.full_name],
    )
    await _ensure_free(session, username=body.username)
    owner = await repository.by_email(session, body.email)
    if owner is None:
        user = await _create(session, body, passwords, settings, meta, None, False)
        return UserOut.model_validate(user)
    await passwords.hash(body.password)  # the same cost as a real registration
    if owner.is_active:
        raw, token = await new_one_time_token(
            session, owner, TokenPurpose.PASSWORD_RESET, settings.password_reset_ttl_seconds
        )
        await send_account_mail(session, settings, UserRegistrationAttempted, owner, raw, token)
    await audit.record(
        session,
        Action.REGISTRATION_ATTEMPTED,
        actor=audit.ANONYMOUS,
        meta=meta,
        outcome=Outcome.DENIED,
        target_user=owner.id,
        details={"username": body.username},
    )
    await session.flush()
    return UserOut(
        id=uuid.uuid4(),
        username=body.username,
        email=body.email,
        email_verified=False,
        is_active=True,
        created_at=utcnow(),
        last_login_at=None,
        **body.model_dump(include={"full_name", "institution", "department", "country", "orcid"}),
    )


async def _create(
    session: AsyncSession,
    body: RegisterIn,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
    role: str | None,
    email_verified: bool,
) -> User:
    user = User(
        username=body.username,
        email=body.email,
        password_hash=await passwords.hash(body.password),
        password_changed_at=utcnow(),
        email_verified_at=utcnow() if email_verified else None,
        is_active=True,
        **body.model_dump(include={"full_name", "institution", "department", "country", "orcid"}),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent registration took the name or address between our check and insert.
        raise Conflict("that username or email address is already registered") from None
    await roles.add_grant(session, user, role or settings.default_role)
    if not email_verified:
        await request_email_verification(session, user, settings)
    await audit.record(
        session,
        Action.REGISTERED,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"username": user.username},
    )
    await session.flush()
    return user


async def _ensure_free(
    session: AsyncSession, *, username: str | None = None, email: str | None = None
) -> None:
    if username is not None and await repository.by_username(session, username):
        raise Conflict("that username is taken", field="username")
    if email is not None and await repository.by_email(session, email):
        raise Conflict("an account with that email address already exists", field="email")


async def update_profile(
    session: AsyncSession, user: User, body: ProfileUpdate, meta: RequestMeta
) -> User:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(user, name, value)
    if changes:
        await audit.record(
            session,
            Action.PROFILE_UPDATED,
            actor=audit.Actor.user(user.id),
            meta=meta,
            target_user=user.id,
            details={"fields": sorted(changes)},
        )
    await session.flush()
    return user


async def change_password(
    session: AsyncSession,
    user: User,
    body: PasswordChange,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    current_session: uuid.UUID | None,
) -> list[uuid.UUID]:
    """Set a new password and end every *other* session, every API token and every
    outstanding one-time token; returns the revoked API tokens' ids (to announce)."""
    await check_current_password(
        sessionmaker, passwords, user, body.current_password, settings, meta
    )
    await _set_password(session, user, body.new_password, passwords, settings, "new_password")
    ended = await sessions.end_all(session, user.id, "password_changed", keep=current_session)
    revoked = await _end_credentials(session, user)
    await audit.record(
        session,
        Action.PASSWORD_CHANGED,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"sessions_ended": ended, "api_tokens_revoked": len(revoked)},
    )
    return revoked


async def _end_credentials(session: AsyncSession, user: User) -> list[uuid.UUID]:
    """What a new password must leave dead (issue 10, item 4): a password changed because it
    leaked must not leave the thief an API token, or a reset or verification link to use."""
    await repository.spend_open_tokens(session, user.id, None)
    return await api_tokens.revoke_all(session, user.id)


async def _set_password(
    session: AsyncSession,
    user: User,
    password: str,
    passwords: Passwords,
    settings: Settings,
    field: str,
) -> None:
    enforce_policy(
        password, settings, field=field, user_inputs=[user.username, user.email, user.full_name]
    )
    user.password_hash = await passwords.hash(password)
    user.password_changed_at = utcnow()
    await session.flush()


async def change_email(
    session: AsyncSession,
    user: User,
    body: EmailChange,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> User:
    await check_current_password(
        sessionmaker, passwords, user, body.current_password, settings, meta
    )
    if body.new_email == user.email:
        return user
    await _ensure_free(session, email=body.new_email)
    # A reset link sent to the old address must not outlive the change (the old mailbox may be
    # the one that leaked); request_email_verification below replaces the verification token.
    await repository.spend_open_tokens(session, user.id, TokenPurpose.PASSWORD_RESET)
    previous = user.email
    user.email = body.new_email
    user.email_verified_at = None
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("an account with that email address already exists") from None
    await request_email_verification(session, user, settings)
    await audit.record(
        session,
        Action.EMAIL_CHANGED,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"previous": previous, "new": user.email},
    )
    return user


# ------------------------------------------------------------------ one-time email tokens


async def request_email_verification(session: AsyncSession, user: User, settings: Settings) -> None:
    """Emit ``user.email_verification_requested`` (notification sends the link)."""
    if user.email_verified_at is not None:
        raise Conflict("this email address is already verified")
    raw, token = await new_one_time_token(
        session, user, TokenPurpose.EMAIL_VERIFICATION, settings.email_verification_ttl_seconds
    )
    await send_account_mail(session, settings, UserEmailVerificationRequested, user, raw, token)


async def confirm_email(session: AsyncSession, raw: str, meta: RequestMeta) -> User:
    token = await repository.usable_token(
        session, hash_secret(raw), TokenPurpose.EMAIL_VERIFICATION
    )
    user = await session.get(User, token.user_id) if token else None
    # The token confirms the address it was sent to, not one the user switched to since.
    if token is None or user is None or user.email != token.email:
        raise BadRequest(_BAD_EMAIL_TOKEN)
    token.used_at = utcnow()
    user.email_verified_at = utcnow()
    await audit.record(
        session,
        Action.EMAIL_VERIFIED,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"email": user.email},
    )
    await session.flush()
    return user


async def request_password_reset(
    session: AsyncSession, email: str, settings: Settings, meta: RequestMeta
) -> None:
    """Emit ``user.password_reset_requested`` when the address has an active account.

    The caller answers the same (202) either way, so this does not reveal who has an account.
    """
    try:
        normalized = normalize_email(email)
    except ValueError:
        return
    user = await repository.by_email(session, normalized)
    if user is None or not user.is_active:
        return
    raw, token = await new_one_time_token(
        session, user, TokenPurpose.PASSWORD_RESET, settings.password_reset_ttl_seconds
    )
    await send_account_mail(session, settings, UserPasswordResetRequested, user, raw, token)
    await audit.record(
        session,
        Action.PASSWORD_RESET_REQUESTED,
        actor=audit.ANONYMOUS,
        meta=meta,
        target_user=user.id,
    )


async def reset_password(
    session: AsyncSession,
    raw: str,
    new_password: str,
    passwords: Passwords,
    settings: Settings,
    meta: RequestMeta,
) -> list[uuid.UUID]:
    """Spend a reset token: new password, every session, API token and other one-time token
    ended, lockout lifted. Returns the revoked API tokens' ids (to announce)."""
    token = await repository.usable_token(session, hash_secret(raw), TokenPurpose.PASSWORD_RESET)
    user = await session.get(User, token.user_id) if token else None
    if token is None or user is None or not user.is_active:
        raise BadRequest(_BAD_EMAIL_TOKEN)
    await _set_password(session, user, new_password, passwords, settings, "new_password")
    token.used_at = utcnow()
    # Receiving the email proves the address, too.
    if user.email_verified_at is None and user.email == token.email:
        user.email_verified_at = utcnow()
    ended = await sessions.end_all(session, user.id, "password_reset")
    revoked = await _end_credentials(session, user)
    await throttle.clear_account(session, user)
    await audit.record(
        session,
        Action.PASSWORD_RESET,
        actor=audit.Actor.user(user.id),
        meta=meta,
        target_user=user.id,
        details={"sessions_ended": ended, "api_tokens_revoked": len(revoked)},
    )
    return revoked


# ------------------------------------------------------------------ admin


async def set_active(
    session: AsyncSession, user: User, active: bool, *, admin_id: uuid.UUID, meta: RequestMeta
) -> User:
    if user.is_active == active:
        return user
    if not active:
        if user.id == admin_id:
            raise Conflict("you cannot deactivate your own account")
        await roles.ensure_other_admins(session, user)
        await sessions.end_all(session, user.id, "deactivated")
    user.is_active = active
    user.deactivated_at = None if active else utcnow()
    await audit.record(
        session,
        Action.ACTIVATED if active else Action.DEACTIVATED,
        actor=audit.Actor.user(admin_id),
        meta=meta,
        target_user=user.id,
    )
    await session.flush()
    return user
