"""Public authentication routes (the gateway exposes them at /api/auth/... without a token)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    ProblemError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    problem_responses,
)
from user_service.accounts import service as accounts
from user_service.accounts.schemas import (
    AccountUnlockConfirm,
    EmailVerificationConfirm,
    LoginIn,
    PasswordResetConfirm,
    PasswordResetRequest,
    RegisterIn,
    UserOut,
)
from user_service.audit import service as audit
from user_service.audit.actions import Action
from user_service.auth import service
from user_service.dependencies import KeyringDep, PasswordsDep, SettingsDep
from user_service.metrics import MetricsDep, outcome_of
from user_service.request_meta import MetaDep
from user_service.tokens import sessions
from user_service.tokens.revocation import RevocationsDep
from user_service.tokens.schemas import RefreshIn, TokenResponse

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: sessions.TokenPair, response: Response) -> TokenResponse:
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (the same answer whether or not the address is registered; "
    "the owner of a registered one is emailed)",
    responses=problem_responses(Conflict, Unprocessable),
)
async def register(
    body: RegisterIn,
    session: SessionDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    meta: MetaDep,
) -> UserOut:
    return await accounts.register_publicly(session, body, passwords, settings, meta)


@router.post(
    "/login",
    summary="Log in with username or email and password",
    responses=problem_responses(Unauthorized, Forbidden, TooManyRequests),
)
async def login(
    body: LoginIn,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    passwords: PasswordsDep,
    keyring: KeyringDep,
    settings: SettingsDep,
    meta: MetaDep,
    response: Response,
    metrics: MetricsDep,
) -> TokenResponse:
    try:
        pair = await service.login(
            session,
            sessionmaker,
            body,
            passwords=passwords,
            keyring=keyring,
            settings=settings,
            meta=meta,
        )
    except ProblemError as exc:
        metrics.logins.labels(outcome_of(exc)).inc()
        raise
    metrics.logins.labels("success").inc()
    metrics.tokens_issued.labels("session").inc()
    return _tokens(pair, response)


@router.post(
    "/refresh",
    summary="Trade a refresh token for new tokens (the old one is spent)",
    responses=problem_responses(Unauthorized),
)
async def refresh(
    body: RefreshIn,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    keyring: KeyringDep,
    settings: SettingsDep,
    meta: MetaDep,
    response: Response,
    metrics: MetricsDep,
) -> TokenResponse:
    try:
        pair = await sessions.rotate(
            session, sessionmaker, keyring, settings, body.refresh_token, meta
        )
    except sessions.RefreshTokenReused:
        metrics.refresh_reuse.inc()
        raise
    metrics.tokens_issued.labels("refresh").inc()
    return _tokens(pair, response)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the session a refresh token belongs to",
)
async def logout(body: RefreshIn, session: SessionDep, meta: MetaDep) -> Response:
    ended = await sessions.end_by_refresh_token(session, body.refresh_token)
    if ended is not None:
        await audit.record(
            session,
            Action.LOGOUT,
            actor=audit.Actor.user(ended.user_id),
            meta=meta,
            target_user=ended.user_id,
            details={"session_id": str(ended.id)},
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Email a password reset link (same answer whether or not the address is known)",
)
async def request_password_reset(
    body: PasswordResetRequest, session: SessionDep, settings: SettingsDep, meta: MetaDep
) -> dict[str, str]:
    await accounts.request_password_reset(session, body.email, settings, meta)
    return {"detail": "if an account uses this address, a reset link is on its way"}


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with the emailed token (ends every session)",
    responses=problem_responses(BadRequest, Unprocessable),
)
async def confirm_password_reset(
    body: PasswordResetConfirm,
    session: SessionDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    meta: MetaDep,
    revocations: RevocationsDep,
) -> Response:
    revoked = await accounts.reset_password(
        session, body.token, body.new_password, passwords, settings, meta
    )
    revocations.tokens(revoked)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Lift the lock on my account with the emailed token",
    responses=problem_responses(BadRequest),
)
async def unlock_account(
    body: AccountUnlockConfirm, session: SessionDep, meta: MetaDep
) -> Response:
    await service.unlock(session, body.token, meta)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/verify-email/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm an email address with the emailed token",
    responses=problem_responses(BadRequest),
)
async def verify_email(
    body: EmailVerificationConfirm, session: SessionDep, meta: MetaDep
) -> Response:
    await accounts.confirm_email(session, body.token, meta)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
