"""Recording probe results: the one place a check result changes the database.

Used for a batch of one (an on-demand check) and for the sweep's batches alike. It works in
bulk — one SELECT ... FOR UPDATE of the services' current state, one multi-row INSERT of the
checks, one executemany UPDATE of the services (the queries live in ``health/repository.py``) —
because a sweep records a thousand results and per-object ORM work would cost as much CPU as the
probes themselves. Row locks keep a sweep and an on-demand check of the same service from losing
each other's update.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.events import ServiceDeactivated, ServiceHealthChanged, add_to_outbox
from service_registry.config import Settings
from service_registry.health import repository, state
from service_registry.health.probes import ProbeResult
from service_registry.models import OutboxEvent

PRODUCER = "service-registry"


@dataclass(frozen=True)
class Recorded:
    """A probe result and when it was taken."""

    result: ProbeResult
    checked_at: datetime


def rules(settings: Settings) -> state.HealthRules:
    return state.HealthRules(
        failures_to_flip=settings.unhealthy_after_failures,
        deactivate_after=timedelta(days=settings.deactivate_after_days),
    )


async def record_results(
    session: AsyncSession, results: dict[uuid.UUID, Recorded], settings: Settings
) -> None:
    """Store the checks, move each service's health state, and stage the events it causes."""
    if not results:
        return
    current = await repository.lock_health_states(session, list(results))
    checks: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    health_rules = rules(settings)
    for row in current:
        recorded = results[row.id]
        result, checked_at = recorded.result, recorded.checked_at
        checks.append(_check_row(row.id, recorded))
        before = state.HealthState(
            row.health_status, row.consecutive_failures, row.first_unhealthy_at
        )
        transition = state.apply(before, result, checked_at, health_rules)
        deactivate = transition.deactivate and row.is_active
        changes.append(
            {
                "id": row.id,
                "health_status": transition.new.status,
                "consecutive_failures": transition.new.consecutive_failures,
                "first_unhealthy_at": transition.new.first_unhealthy_at,
                "health_checked_at": checked_at,
                "response_time_ms": result.response_time_ms,
                "last_error": result.error,
                "is_active": row.is_active and not deactivate,
                "api_url": result.api_url or row.api_url,
            }
        )
        if transition.status_changed:
            await add_to_outbox(
                session,
                OutboxEvent,
                ServiceHealthChanged(
                    producer=PRODUCER,
                    service_id=row.id,
                    service_slug=row.slug,
                    previous_status=before.status.value,
                    status=transition.new.status.value,
                    error=result.error,
                    response_time_ms=result.response_time_ms,
                    checked_at=checked_at,
                ),
            )
        if deactivate:
            await add_to_outbox(
                session,
                OutboxEvent,
                ServiceDeactivated(
                    producer=PRODUCER,
                    service_id=row.id,
                    service_slug=row.slug,
                    reason=f"unhealthy for {settings.deactivate_after_days} days",
                ),
            )
    await repository.store_checks(session, checks, changes)


def _check_row(service_id: uuid.UUID, recorded: Recorded) -> dict[str, Any]:
    result = recorded.result
    return {
        "id": uuid.uuid4(),
        "service_id": service_id,
        "status": result.status,
        "http_status": result.http_status,
        "response_time_ms": result.response_time_ms,
        "error": result.error,
        "checked_at": recorded.checked_at,
    }
