"""Personal API tokens (create, list, revoke, exchange at the gateway) and service tokens."""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.fleet import SERVICE_NAMES
from fedimpute_shared.problems import Conflict, FieldProblem, NotFound, Unauthorized, Unprocessable
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.config import Settings
from user_service.models import ApiToken, User
from user_service.request_meta import RequestMeta
from user_service.roles.service import Access, effective_access
from user_service.security.keys import Keyring
from user_service.security.opaque import API_TOKEN_PREFIX, hash_secret, new_secret
from user_service.tokens import issuer, repository
from user_service.tokens.schemas import ApiTokenCreate, ExchangeOut, ServiceTokenIn

_PREFIX_SHOWN = 10  # "fgi_" and six characters: enough to tell tokens apart, useless to guess
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # bounds writes: the gateway caches exchanges
_BAD_API_TOKEN = "the API token is invalid, expired or revoked"
# Compared against when a client id is unknown, so an unknown id costs the same time.
_NO_SECRET = "unknown client: nothing matches this value"


async def create_api_token(
    session: AsyncSession,
    owner: User,
    caller: Principal,
    body: ApiTokenCreate,
    settings: Settings,
    meta: RequestMeta,
) -> tuple[ApiToken, str]:
    """A new token and its one-time plain value. Scopes must be ones the caller holds now."""
    held = (await effective_access(session, owner.id)).scopes & caller.scopes
    missing = sorted(str(s) for s in body.scopes if s not in held)
    if missing:
        raise Unprocessable(
            f"you cannot give a token scopes you do not hold: {', '.join(missing)}",
            errors=[
                FieldProblem(
                    pointer="#/body/scopes",
                    field="body.scopes",
                    message="not held: " + ", ".join(missing),
                    code="scope_not_held",
                )
            ],
        )
    days = min(body.expires_in_days or settings.api_token_default_days, settings.api_token_max_days)
    raw = new_secret(API_TOKEN_PREFIX)
    token = ApiToken(
        id=uuid.uuid4(),  # known now, for the audit entry written in the same flush
        user_id=owner.id,
        name=body.name,
        prefix=raw[:_PREFIX_SHOWN],
        token_hash=hash_secret(raw),
        scopes=[str(s) for s in body.scopes],
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(token)
    await audit.record(
        session,
        Action.API_TOKEN_CREATED,
        actor=audit.Actor.user(owner.id),
        meta=meta,
        target=("api_token", str(token.id)),
        details={"name": token.name, "scopes": token.scopes, "expires_at": str(token.expires_at)},
    )
    try:
        await session.flush()  # the token and its audit entry: one flush, none left to commit
    except IntegrityError:
        # The unique index on (user, name) among live tokens decides (no query asking first:
        # one round trip fewer per create, and two concurrent creates cannot both pass it).
        raise Conflict(f"you already have a token named {body.name!r}") from None
    return token, raw


async def revoke_api_token(
    session: AsyncSession, owner: User, token_id: uuid.UUID, meta: RequestMeta
) -> ApiToken:
    token = await repository.owned(session, owner.id, token_id)
    if token is None:
        raise NotFound("no such API token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await audit.record(
            session,
            Action.API_TOKEN_REVOKED,
            actor=audit.Actor.user(owner.id),
            meta=meta,
            target=("api_token", str(token.id)),
            details={"name": token.name},
        )
    return token


async def exchange(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    presented: str,
    meta: RequestMeta,
) -> ExchangeOut:
    """The gateway trades an ``fgi_`` token for a short-lived access JWT with its scopes.

    The JWT's scopes are the token's scopes that the owner *still* holds, so a lost role takes
    effect at the next exchange. A refused API token is a 422, never a 401: a 401 tells the
    gateway its own service token failed (and makes it re-mint one), which a guessed ``fgi_``
    token must not cost.
    """
    token = None
    if presented.startswith(API_TOKEN_PREFIX):
        token = await repository.by_hash(session, hash_secret(presented))
    if token is None:
        raise Unprocessable(_BAD_API_TOKEN)
    now = utcnow()
    owner = await session.get(User, token.user_id)
    if token.revoked_at is not None:
        refusal = "revoked"
    elif token.expires_at <= now:
        refusal = "expired"
    elif owner is None or not owner.is_active:
        refusal = "owner_inactive"
    else:
        refusal = None
    if refusal is not None or owner is None:
        await _audit_refused_exchange(sessionmaker, token, refusal or "owner_inactive", meta)
        raise Unprocessable(_BAD_API_TOKEN)
    access = await effective_access(session, owner.id)
    narrowed = Access(
        roles=access.roles,
        scopes=access.scopes & frozenset(token.scopes),
        service_roles=access.service_roles,
    )
    signed = issuer.access_token(
        keyring,
        settings,
        owner.id,
        narrowed,
        api_token_id=token.id,
        ttl_seconds=max(1, int((token.expires_at - now).total_seconds())),
    )
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = now
    return ExchangeOut(
        access_token=signed.token,
        expires_in=signed.expires_in,
        token_id=token.id,
        user_id=owner.id,
    )


async def _audit_refused_exchange(
    sessionmaker: async_sessionmaker[AsyncSession], token: ApiToken, reason: str, meta: RequestMeta
) -> None:
    async with session_scope(sessionmaker) as side:
        await audit.record(
            side,
            Action.API_TOKEN_REFUSED,
            actor=audit.Actor("service", "api-gateway"),
            meta=meta,
            outcome=Outcome.DENIED,
            target=("api_token", str(token.id)),
            details={"reason": reason, "owner_id": str(token.user_id)},
        )


def check_client(body: ServiceTokenIn, settings: Settings) -> bool:
    """Constant-time check of a client id and secret (unknown ids cost the same)."""
    expected = settings.service_client_secrets.get(body.client_id)
    reference = expected.get_secret_value() if expected is not None else _NO_SECRET
    matches = hmac.compare_digest(body.client_secret.encode(), reference.encode())
    return matches and expected is not None


async def issue_service_token(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    settings: Settings,
    body: ServiceTokenIn,
    meta: RequestMeta,
) -> issuer.SignedToken:
    if not check_client(body, settings):
        async with session_scope(sessionmaker) as side:
            await audit.record(
                side,
                Action.SERVICE_TOKEN_REFUSED,
                actor=audit.Actor("service", body.client_id[:100]),
                meta=meta,
                outcome=Outcome.DENIED,
                details={"audience": body.audience[:100]},
            )
        raise Unauthorized("unknown client or wrong secret")
    if body.audience not in SERVICE_NAMES:
        raise Unprocessable(f"unknown audience {body.audience!r}; use a service name")
    return issuer.service_token(keyring, settings, body.client_id, body.audience)
