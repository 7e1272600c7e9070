"""Token routes: the JWKS, personal API tokens, and the internal token endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from fedimpute_shared.auth import CurrentUser, Principal, require_services
from fedimpute_shared.db import ReadSessionDep, SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
    problem_responses,
)
from user_service.audit import service as audit
from user_service.audit.actions import Action
from user_service.dependencies import (
    InteractiveAccount,
    InteractiveReadAccount,
    KeyringDep,
    SettingsDep,
)
from user_service.metrics import MetricsDep
from user_service.request_meta import MetaDep
from user_service.tokens import repository, service, sessions
from user_service.tokens.revocation import RevocationsDep
from user_service.tokens.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenOut,
    ExchangeIn,
    ExchangeOut,
    ServiceTokenIn,
    ServiceTokenOut,
    SessionOut,
)

router = APIRouter(tags=["tokens"])
internal_router = APIRouter(prefix="/internal", tags=["internal"])

Gateway = Annotated[Principal, Depends(require_services("api-gateway"))]


@router.get("/.well-known/jwks.json", summary="Public keys that verify our tokens (JWKS)")
async def jwks(keyring: KeyringDep, response: Response) -> dict[str, list[dict[str, Any]]]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return keyring.jwks()


@router.get("/users/me/sessions", summary="My live login sessions (devices)")
async def list_sessions(
    session: SessionDep, account: InteractiveAccount, user: CurrentUser
) -> list[SessionOut]:
    current = user.claims.get("sid")
    return [
        SessionOut.model_validate(s).model_copy(update={"current": str(s.id) == current})
        for s in await sessions.live_sessions(session, account.id)
    ]


@router.delete(
    "/users/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End one of my sessions (log a device out)",
    responses=problem_responses(NotFound),
)
async def end_session(
    session_id: uuid.UUID, session: SessionDep, account: InteractiveAccount, meta: MetaDep
) -> Response:
    if not await sessions.end_one(session, account.id, session_id):
        raise NotFound("no such live session")
    await audit.record(
        session,
        Action.LOGOUT,
        actor=audit.Actor.user(account.id),
        meta=meta,
        target_user=account.id,
        details={"session_id": str(session_id)},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me/api-tokens", summary="My personal API tokens (never their values)")
async def list_api_tokens(
    session: ReadSessionDep, account: InteractiveReadAccount, include_revoked: bool = False
) -> list[ApiTokenOut]:
    rows = await repository.listing(session, account.id, include_revoked=include_revoked)
    return [ApiTokenOut.model_validate(r) for r in rows]


@router.post(
    "/users/me/api-tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Create a personal API token (its value is shown only in this answer)",
    responses=problem_responses(Conflict, Unprocessable),
)
async def create_api_token(
    body: ApiTokenCreate,
    session: SessionDep,
    account: InteractiveAccount,
    user: CurrentUser,
    settings: SettingsDep,
    meta: MetaDep,
    response: Response,
    metrics: MetricsDep,
) -> ApiTokenCreated:
    token, raw = await service.create_api_token(session, account, user, body, settings, meta)
    metrics.tokens_issued.labels("api_token").inc()
    response.headers["Cache-Control"] = "no-store"
    return ApiTokenCreated(**ApiTokenOut.model_validate(token).model_dump(), token=raw)


@router.delete(
    "/users/me/api-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of my API tokens",
    responses=problem_responses(NotFound),
)
async def revoke_api_token(
    token_id: uuid.UUID,
    session: SessionDep,
    account: InteractiveAccount,
    meta: MetaDep,
    revocations: RevocationsDep,
) -> Response:
    token = await service.revoke_api_token(session, account, token_id, meta)
    # Runs after the response, so after the commit: a gateway that re-exchanges is refused.
    revocations.tokens([token.id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal_router.post(
    "/api-tokens/exchange",
    summary="Exchange an API token for a short-lived access JWT (api-gateway only)",
    description="401: the caller's service token is refused. 422: the API token is invalid, "
    "expired or revoked.",
    responses=problem_responses(Unauthorized, Forbidden, Unprocessable),
)
async def exchange_api_token(
    body: ExchangeIn,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    gateway: Gateway,
    keyring: KeyringDep,
    settings: SettingsDep,
    meta: MetaDep,
    metrics: MetricsDep,
) -> ExchangeOut:
    exchanged = await service.exchange(session, sessionmaker, keyring, settings, body.token, meta)
    metrics.tokens_issued.labels("api_exchange").inc()
    return exchanged


@internal_router.post(
    "/service-tokens",
    summary="Client-credentials service token for calls between services",
    responses=problem_responses(Unauthorized, Unprocessable),
)
async def issue_service_token(
    body: ServiceTokenIn,
    sessionmaker: SessionmakerDep,
    keyring: KeyringDep,
    settings: SettingsDep,
    meta: MetaDep,
    response: Response,
    metrics: MetricsDep,
) -> ServiceTokenOut:
    signed = await service.issue_service_token(sessionmaker, keyring, settings, body, meta)
    metrics.tokens_issued.labels("service").inc()
    response.headers["Cache-Control"] = "no-store"
    return ServiceTokenOut(access_token=signed.token, expires_in=signed.expires_in)
