"""Storing, describing, handing out and re-encrypting vault credentials."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.problems import NotFound, ServiceUnavailable
from user_service.audit import service as audit
from user_service.audit.actions import Action, Outcome
from user_service.models import ServiceCredential
from user_service.request_meta import RequestMeta
from user_service.security.vault_cipher import Sealed, VaultCipher, VaultDecryptError
from user_service.vault import repository
from user_service.vault.schemas import ClientCredentials, CredentialIn

_MIN_LENGTH_FOR_HINT = 8  # below this, four characters would give away too much


def _associated_data(user_id: uuid.UUID, service_id: uuid.UUID) -> str:
    return f"fedimpute-vault:v1:{user_id}:{service_id}"


def _secret_of(body: CredentialIn) -> tuple[dict[str, str], str]:
    """The secret fields to encrypt, and the value whose last four characters are shown."""
    if isinstance(body, ClientCredentials):
        return {"client_id": body.client_id, "client_secret": body.client_secret}, (
            body.client_secret
        )
    return {"token": body.token}, body.token


async def get_owned(
    session: AsyncSession, user_id: uuid.UUID, service_id: uuid.UUID
) -> ServiceCredential:
    credential = await repository.find(session, user_id, service_id)
    if credential is None:
        raise NotFound("no credential stored for this service")
    return credential


async def store(
    session: AsyncSession,
    cipher: VaultCipher,
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    body: CredentialIn,
    meta: RequestMeta,
) -> ServiceCredential:
    """Create or replace the user's credential for the service."""
    secret, shown = _secret_of(body)
    sealed = cipher.seal(secret, _associated_data(user_id, service_id))
    credential = await repository.find(session, user_id, service_id)
    if credential is None:
        credential = ServiceCredential(user_id=user_id, service_id=service_id)
        session.add(credential)
    credential.credential_type = body.credential_type
    credential.label = body.label
    credential.last_four = shown[-4:] if len(shown) >= _MIN_LENGTH_FOR_HINT else ""
    credential.expires_at = body.expires_at
    credential.key_id, credential.nonce, credential.ciphertext = (
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
    )
    credential.last_verified_at = None
    credential.last_verification_ok = None
    credential.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        Action.CREDENTIAL_STORED,
        actor=audit.Actor.user(user_id),
        meta=meta,
        target_user=user_id,
        details={"service_id": str(service_id), "credential_type": str(body.credential_type)},
    )
    return credential


async def delete(
    session: AsyncSession, user_id: uuid.UUID, service_id: uuid.UUID, meta: RequestMeta
) -> None:
    credential = await get_owned(session, user_id, service_id)
    await session.delete(credential)
    await audit.record(
        session,
        Action.CREDENTIAL_DELETED,
        actor=audit.Actor.user(user_id),
        meta=meta,
        target_user=user_id,
        details={"service_id": str(service_id)},
    )
    await session.flush()


async def reveal(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    cipher: VaultCipher,
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    *,
    caller: str,
    meta: RequestMeta,
) -> tuple[ServiceCredential, dict[str, str]]:
    """Decrypt a credential for a service (job-processor); every read is audited, a failed
    one in its own transaction (the request itself fails and rolls back)."""
    credential = await repository.find(session, user_id, service_id)
    secret: dict[str, str] | None = None
    if credential is not None:
        try:
            secret = cipher.open(_sealed(credential), _associated_data(user_id, service_id))
        except VaultDecryptError:
            secret = None
    outcome = Outcome.SUCCESS if secret is not None else Outcome.FAILURE
    if secret is None:
        async with session_scope(sessionmaker) as side:
            await _audit_read(side, caller, user_id, service_id, outcome, meta)
    if credential is None:
        raise NotFound("the user has no credential for this service")
    if secret is None:
        raise ServiceUnavailable("the credential cannot be decrypted with the configured keys")
    await _audit_read(session, caller, user_id, service_id, outcome, meta)
    return credential, secret


async def _audit_read(
    session: AsyncSession,
    caller: str,
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    outcome: Outcome,
    meta: RequestMeta,
) -> None:
    await audit.record(
        session,
        Action.CREDENTIAL_READ,
        actor=audit.Actor("service", caller),
        meta=meta,
        outcome=outcome,
        target_user=user_id,
        details={"service_id": str(service_id)},
    )


async def record_verification(
    session: AsyncSession,
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    ok: bool,
    *,
    caller: str,
    meta: RequestMeta,
) -> None:
    credential = await get_owned(session, user_id, service_id)
    credential.last_verified_at = utcnow()
    credential.last_verification_ok = ok
    await audit.record(
        session,
        Action.CREDENTIAL_VERIFIED,
        actor=audit.Actor("service", caller),
        meta=meta,
        outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
        target_user=user_id,
        details={"service_id": str(service_id)},
    )


async def reencrypt_all(session: AsyncSession, cipher: VaultCipher) -> int:
    """Re-encrypt every credential not under the active key; returns how many were moved."""
    moved = 0
    for credential in await repository.not_under_key(session, cipher.active_key_id):
        aad = _associated_data(credential.user_id, credential.service_id)
        sealed = cipher.seal(cipher.open(_sealed(credential), aad), aad)
        credential.key_id, credential.nonce, credential.ciphertext = (
            sealed.key_id,
            sealed.nonce,
            sealed.ciphertext,
        )
        moved += 1
    await session.flush()
    return moved


def _sealed(credential: ServiceCredential) -> Sealed:
    return Sealed(credential.key_id, credential.nonce, credential.ciphertext)
