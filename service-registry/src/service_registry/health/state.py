"""How a probe result changes a service's health: the rules, as pure functions.

- A success (healthy/degraded) resets the failure streak and sets the status at once.
- A failure (unhealthy/timeout) counts; the status turns bad only after ``failures_to_flip``
  consecutive failures, so one blip does not flap a service (and its users' notifications).
- ``first_unhealthy_at`` marks the start of the current failure streak: a service failing for
  ``at_risk_after_days`` is *at risk*, and after ``deactivate_after_days`` it is deactivated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service_registry.health.probes import ProbeResult
from service_registry.models import HealthStatus


@dataclass(frozen=True)
class HealthRules:
    failures_to_flip: int
    deactivate_after: timedelta


@dataclass(frozen=True)
class HealthState:
    status: HealthStatus
    consecutive_failures: int
    first_unhealthy_at: datetime | None


@dataclass(frozen=True)
class Transition:
    new: HealthState
    status_changed: bool
    deactivate: bool


def apply(
    current: HealthState, result: ProbeResult, now: datetime, rules: HealthRules
) -> Transition:
    """The service's next health state after ``result``."""
    if result.ok:
        new = HealthState(result.status, 0, None)
        return Transition(new, new.status is not current.status, deactivate=False)
    failures = current.consecutive_failures + 1
    first_bad = current.first_unhealthy_at or now
    status = result.status if failures >= rules.failures_to_flip else current.status
    new = HealthState(status, failures, first_bad)
    deactivate = now - first_bad >= rules.deactivate_after
    return Transition(new, new.status is not current.status, deactivate)
