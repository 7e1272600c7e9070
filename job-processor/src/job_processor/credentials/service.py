"""``POST /credentials/{service}/verify``: the caller's stored credentials tried against the
service itself through its adapter (Cloudgene ``POST /api/v2/tokens/verify``, the DNAstack token
endpoint, a WES call that needs auth), using no job quota, and the outcome recorded in the vault
(``last_verified_at``/``last_verification_ok``), so a bad or expired token is found before a job
is sent. A service that cannot be reached proves nothing either way: nothing is recorded."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import NotFound, ServiceUnavailable, Unprocessable
from job_processor.adapters.base import (
    Adapter,
    AdapterError,
    AuthFailed,
    CheckResult,
    Credentials,
    NotSubmittable,
    RemoteUnavailable,
    ServiceTarget,
)
from job_processor.clients import UpstreamError
from job_processor.jobs.service import Context

logger = logging.getLogger(__name__)
AdapterLookup = Callable[[str], Adapter]


class VerificationOut(BaseModel):
    service_id: uuid.UUID
    service_slug: str
    ok: bool = Field(description="Whether the service accepted the stored credentials.")
    message: str = Field(description="What the service said, for the user to act on.")
    checked_at: datetime
    recorded: bool = Field(description="Whether the outcome was stored in the vault.")


def _unavailable(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{what} cannot be reached to check the credentials; nothing was recorded, try again",
        headers={"Retry-After": "30"},
    )


async def verify(
    ctx: Context, adapters: AdapterLookup, user: Principal, ref: str
) -> VerificationOut:
    try:
        service = await ctx.upstreams.registry.service(ref)
        if service is None:
            raise NotFound(f"there is no service '{ref}'")
        service_id = uuid.UUID(str(service["id"]))
        stored = await ctx.upstreams.vault.credentials(user.user_id, service_id)
    except UpstreamError as exc:
        raise _unavailable(exc.service) from exc
    name = str(service.get("name") or service["slug"])
    if stored is None:
        raise NotFound(
            f"you have no credentials stored for {name}: add them under your account first"
        )
    try:
        adapter = adapters(str(service["kind"]))
    except KeyError:
        raise Unprocessable(f"{name} uses a protocol this platform cannot drive") from None
    result = await _check(adapter, ServiceTarget.from_registry(service), stored, name)
    try:
        recorded = await ctx.upstreams.vault.report_verification(
            user.user_id, service_id, result.ok
        )
    except UpstreamError:
        logger.warning("credential check not recorded", extra={"service_id": str(service_id)})
        recorded = False
    return VerificationOut(
        service_id=service_id,
        service_slug=str(service["slug"]),
        ok=result.ok,
        message=result.message,
        checked_at=utcnow(),
        recorded=recorded,
    )


async def _check(
    adapter: Adapter, target: ServiceTarget, stored: dict[str, object], name: str
) -> CheckResult:
    """The adapter's verdict; refused credentials are an answer (ok=False), an unreachable
    service is not."""
    try:
        return await adapter.verify_credentials(target, Credentials.from_vault(stored))
    except AuthFailed as exc:
        return CheckResult(False, exc.message)
    except RemoteUnavailable as exc:
        raise ServiceUnavailable(
            f"{name} cannot be reached to check the credentials ({exc.message}); "
            "nothing was recorded, try again",
            headers={"Retry-After": "30"},
        ) from exc
    except NotSubmittable as exc:
        raise Unprocessable(exc.message) from exc
    except AdapterError as exc:
        return CheckResult(False, exc.message)
