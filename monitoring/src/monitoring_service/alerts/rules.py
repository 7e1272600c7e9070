"""Alert rules as configured (``ALERT_RULES``, a JSON list): what each kind watches, its
threshold, and for how many consecutive evaluations the condition must hold."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedimpute_shared.events import AlertSeverity

__all__ = ["DEFAULT_RULES", "AlertRule", "RuleKind"]


class RuleKind(StrEnum):
    """What a rule watches; the subject of its alerts is given per kind."""

    SERVICE_DOWN = "service_down"  # a fleet service's /health fails (subject: the service)
    ERROR_RATE = "error_rate"  # % of 5xx among a service's requests (subject: the service)
    LATENCY_P95 = "latency_p95"  # a service's p95 request latency in ms (subject: the service)
    EXTERNAL_UNHEALTHY = "external_unhealthy"  # an external service's health (subject: slug)
    DISK_USAGE = "disk_usage"  # % used of a watched file system (subject: "host")
    JOB_FAILURE_RATE = "job_failure_rate"  # % failed among jobs finished in 1 h (subject: "jobs")
    CONSUMER_LAG = "consumer_lag"  # entries not yet read by a consumer group (subject: group)


# Kinds whose threshold is a number to exceed; the others are states (down, unhealthy).
_NEEDS_THRESHOLD = {
    RuleKind.ERROR_RATE,
    RuleKind.LATENCY_P95,
    RuleKind.DISK_USAGE,
    RuleKind.JOB_FAILURE_RATE,
    RuleKind.CONSUMER_LAG,
}


class AlertRule(BaseModel):
    """One rule. ``for_checks``: consecutive evaluations (or fleet checks, for service_down)
    the condition must hold before an alert opens, so one slow poll pages nobody."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: RuleKind
    severity: AlertSeverity = "warning"
    threshold: float | None = Field(default=None, ge=0)
    for_checks: int = Field(default=1, ge=1, le=100)
    # job_failure_rate only: the rate must also exceed the previous hour's by this many points
    # (a jump, not a steady level), and at least min_jobs jobs must have finished in the hour.
    jump_points: float = Field(default=0, ge=0)
    min_jobs: int = Field(default=5, ge=1)
    enabled: bool = True

    @model_validator(mode="after")
    def _threshold_when_needed(self) -> Self:
        if self.kind in _NEEDS_THRESHOLD and self.threshold is None:
            raise ValueError(f"rule {self.name!r}: kind {self.kind} needs a threshold")
        return self


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(name="service-down", kind=RuleKind.SERVICE_DOWN, severity="critical", for_checks=3),
    AlertRule(name="error-rate", kind=RuleKind.ERROR_RATE, threshold=5, for_checks=2),
    AlertRule(name="latency-p95", kind=RuleKind.LATENCY_P95, threshold=2000, for_checks=3),
    AlertRule(name="external-service-unhealthy", kind=RuleKind.EXTERNAL_UNHEALTHY),
    AlertRule(name="disk-usage", kind=RuleKind.DISK_USAGE, severity="critical", threshold=90),
    AlertRule(
        name="job-failure-rate",
        kind=RuleKind.JOB_FAILURE_RATE,
        threshold=30,
        jump_points=20,
        min_jobs=5,
    ),
    AlertRule(name="consumer-lag", kind=RuleKind.CONSUMER_LAG, threshold=1000, for_checks=3),
)
