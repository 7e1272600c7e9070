"""Vault routes: a user's own credentials (metadata only) and job-processor's internal read."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from fedimpute_shared.auth import Principal, require_services
from fedimpute_shared.db import SessionDep
from fedimpute_shared.deps import SessionmakerDep
from fedimpute_shared.problems import (
    Forbidden,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    problem_responses,
)
from user_service.dependencies import (
    CredentialReader,
    CredentialWriter,
    VaultDep,
)
from user_service.metrics import MetricsDep
from user_service.request_meta import MetaDep
from user_service.vault import repository, service
from user_service.vault.schemas import (
    CredentialIn,
    CredentialOut,
    CredentialSecretOut,
    VerificationReport,
)

router = APIRouter(prefix="/users/me/service-credentials", tags=["credentials"])
internal_router = APIRouter(prefix="/internal/users", tags=["internal"])

JobProcessor = Annotated[Principal, Depends(require_services("job-processor"))]


@router.get("", summary="My stored credentials (metadata only)")
async def list_credentials(session: SessionDep, account: CredentialReader) -> list[CredentialOut]:
    return [CredentialOut.model_validate(c) for c in await repository.listing(session, account.id)]


@router.get(
    "/{service_id}",
    summary="My credential for one service (metadata only)",
    responses=problem_responses(NotFound),
)
async def get_credential(
    service_id: uuid.UUID, session: SessionDep, account: CredentialReader
) -> CredentialOut:
    return CredentialOut.model_validate(await service.get_owned(session, account.id, service_id))


@router.put(
    "/{service_id}",
    summary="Store or replace my credential for one service (encrypted at rest)",
)
async def put_credential(
    service_id: uuid.UUID,
    body: CredentialIn,
    session: SessionDep,
    account: CredentialWriter,
    vault: VaultDep,
    meta: MetaDep,
) -> CredentialOut:
    stored = await service.store(session, vault, account.id, service_id, body, meta)
    return CredentialOut.model_validate(stored)


@router.delete(
    "/{service_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete my credential for one service",
    responses=problem_responses(NotFound),
)
async def delete_credential(
    service_id: uuid.UUID, session: SessionDep, account: CredentialWriter, meta: MetaDep
) -> Response:
    await service.delete(session, account.id, service_id, meta)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal_router.get(
    "/{user_id}/service-credentials/{service_id}",
    summary="The decrypted credential of a user for a service (job-processor only; audited)",
    responses=problem_responses(NotFound, Forbidden, ServiceUnavailable),
)
async def reveal_credential(
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    caller: JobProcessor,
    vault: VaultDep,
    meta: MetaDep,
    response: Response,
    metrics: MetricsDep,
) -> CredentialSecretOut:
    try:
        credential, secret = await service.reveal(
            session,
            sessionmaker,
            vault,
            user_id,
            service_id,
            caller=caller.service_name or "job-processor",
            meta=meta,
        )
    except ProblemError:
        metrics.vault_reads.labels("failure").inc()
        raise
    metrics.vault_reads.labels("success").inc()
    response.headers["Cache-Control"] = "no-store"
    return CredentialSecretOut(
        user_id=user_id,
        service_id=service_id,
        credential_type=credential.credential_type,
        secret=secret,
        expires_at=credential.expires_at,
    )


@internal_router.post(
    "/{user_id}/service-credentials/{service_id}/verification",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Record whether the credential worked against the service (job-processor only)",
    responses=problem_responses(NotFound, Forbidden),
)
async def report_verification(
    user_id: uuid.UUID,
    service_id: uuid.UUID,
    body: VerificationReport,
    session: SessionDep,
    caller: JobProcessor,
    meta: MetaDep,
) -> Response:
    await service.record_verification(
        session, user_id, service_id, body.ok, caller=caller.service_name or "", meta=meta
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
