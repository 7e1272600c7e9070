"""user-service's own counters: built once per app in its registry (``create_service_app(...,
metrics=UserMetrics)``), served at /metrics, given to handlers as ``MetricsDep``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from prometheus_client import CollectorRegistry, Counter

from fedimpute_shared.deps import from_state
from fedimpute_shared.problems import ProblemError


class UserMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.logins = Counter(
            "user_service_logins_total",
            "Login attempts by outcome (success, failure, locked, denied).",
            ["outcome"],
            registry=registry,
        )
        self.tokens_issued = Counter(
            "user_service_tokens_issued_total",
            "Tokens issued by kind (session, refresh, service, api_exchange, api_token).",
            ["kind"],
            registry=registry,
        )
        self.refresh_reuse = Counter(
            "user_service_refresh_token_reuse_total",
            "Spent refresh tokens presented again (their session was revoked).",
            registry=registry,
        )
        self.vault_reads = Counter(
            "user_service_vault_reads_total",
            "Decrypted credential reads by job-processor, by outcome.",
            ["outcome"],
            registry=registry,
        )


def outcome_of(error: ProblemError) -> str:
    return {401: "failure", 403: "denied", 429: "locked"}.get(error.status, "error")


MetricsDep = Annotated[UserMetrics, Depends(from_state("metrics"))]
