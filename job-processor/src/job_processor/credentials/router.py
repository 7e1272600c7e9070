"""``POST /credentials/{service}/verify`` (thin route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from fedimpute_shared.auth import Principal, require_scopes
from fedimpute_shared.deps import from_state
from fedimpute_shared.permissions import Scope
from fedimpute_shared.problems import NotFound, ServiceUnavailable, Unprocessable, problem_responses
from job_processor.credentials import service
from job_processor.credentials.service import AdapterLookup, VerificationOut
from job_processor.dependencies import ContextDep

router = APIRouter(prefix="/credentials", tags=["credentials"])
AdaptersDep = Annotated[AdapterLookup, Depends(from_state("adapters"))]
# It writes the outcome into the vault: the credentials' own write scope.
CredentialWriter = Annotated[Principal, Depends(require_scopes(Scope.CREDENTIALS_WRITE))]
ServiceRef = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[\w.@:+-]+$")]


@router.post(
    "/{service_ref}/verify",
    summary="Check my stored credentials against the service itself, and record the outcome",
    responses=problem_responses(NotFound, Unprocessable, ServiceUnavailable),
)
async def verify_credentials(
    service_ref: ServiceRef, user: CredentialWriter, ctx: ContextDep, adapters: AdaptersDep
) -> VerificationOut:
    return await service.verify(ctx, adapters, user, service_ref)
