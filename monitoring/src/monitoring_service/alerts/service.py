"""Alerts' life: raised when a rule's condition held for ``for_checks`` evaluations, refreshed
while it holds, resolved when it clears (or when its rule is removed); acknowledged by an
admin meanwhile. Raising and resolving write ``alert.raised`` / ``alert.resolved`` to the outbox
in the same transaction, so the notification service tells the admins exactly once.

Deduplication: one unresolved alert per (rule, subject) — the evaluator looks it up first, and
a partial unique index makes it the database's rule too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import AlertRaised, AlertResolved, add_to_outbox
from monitoring_service.alerts.observe import Observation, observe
from monitoring_service.alerts.rules import AlertRule, RuleKind
from monitoring_service.config import Settings
from monitoring_service.metrics import MonitoringMetrics
from monitoring_service.models import Alert, AlertState, OutboxEvent

__all__ = ["AlertEvaluator", "acknowledge", "listing", "unresolved"]

logger = logging.getLogger(__name__)
PRODUCER = "monitoring"


async def unresolved(session: AsyncSession) -> Sequence[Alert]:
    stmt = select(Alert).where(Alert.state != AlertState.RESOLVED).with_for_update()
    return (await session.scalars(stmt)).all()


def listing(state: AlertState | None) -> Select[Any]:
    stmt = select(Alert)
    return stmt.where(Alert.state == state) if state is not None else stmt


async def acknowledge(session: AsyncSession, alert: Alert, user_id: uuid.UUID) -> Alert:
    """Open -> acknowledged (the first acknowledgement is kept)."""
    if alert.state is AlertState.OPEN:
        alert.state = AlertState.ACKNOWLEDGED
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = user_id
    return alert


async def _raise(session: AsyncSession, rule: AlertRule, seen: Observation) -> Alert:
    now = utcnow()
    alert = Alert(
        id=uuid.uuid4(),
        rule=rule.name,
        kind=str(rule.kind),
        severity=rule.severity,
        subject=seen.subject[:200],
        summary=seen.summary[:500],
        value=seen.value,
        threshold=rule.threshold,
        state=AlertState.OPEN,
        started_at=now,
        last_seen_at=now,
    )
    session.add(alert)
    await add_to_outbox(
        session,
        OutboxEvent,
        AlertRaised(
            producer=PRODUCER,
            alert_id=alert.id,
            rule=alert.rule,
            kind=alert.kind,
            severity=rule.severity,
            subject=alert.subject,
            summary=alert.summary,
            value=alert.value,
            threshold=alert.threshold,
            started_at=now,
        ),
    )
    logger.warning("alert raised", extra={"rule": rule.name, "subject": alert.subject})
    return alert


async def _resolve(
    session: AsyncSession, alert: Alert, reason: Literal["cleared", "rule_removed"]
) -> None:
    now = utcnow()
    alert.state, alert.resolved_at, alert.resolve_reason = AlertState.RESOLVED, now, reason
    await add_to_outbox(
        session,
        OutboxEvent,
        AlertResolved(
            producer=PRODUCER,
            alert_id=alert.id,
            rule=alert.rule,
            kind=alert.kind,
            severity="critical" if alert.severity == "critical" else "warning",
            subject=alert.subject,
            summary=alert.summary,
            started_at=alert.started_at,
            resolved_at=now,
            reason=reason,
        ),
    )
    logger.info("alert resolved", extra={"rule": alert.rule, "subject": alert.subject})


class AlertEvaluator:
    """One evaluation: observe every enabled rule, count streaks, raise, refresh, resolve.

    Streaks (consecutive firing evaluations) live in memory: the evaluator runs as one task
    with the advisory lock, and a restart only delays an alert by ``for_checks`` rounds.
    ``service_down`` counts fleet checks in the database instead, so its streak survives.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: MonitoringMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._metrics = metrics
        self._streaks: dict[tuple[str, str], int] = {}

    async def evaluate_once(self) -> dict[str, int]:
        """Returns how many alerts were raised and resolved."""
        rules = {r.name: r for r in self._settings.alert_rules if r.enabled}
        counts = {"raised": 0, "resolved": 0}
        async with session_scope(self._sessionmaker) as session:
            open_alerts = {(a.rule, a.subject): a for a in await unresolved(session)}
            for rule in rules.values():
                for seen in await observe(session, rule, self._settings.watched_services):
                    key = (rule.name, seen.subject[:200])
                    alert = open_alerts.get(key)
                    if self._fires(rule, key, seen) and alert is None:
                        open_alerts[key] = await _raise(session, rule, seen)
                        counts["raised"] += 1
                    elif seen.firing and alert is not None:
                        alert.last_seen_at, alert.value = utcnow(), seen.value
                    elif not seen.firing and alert is not None:
                        await _resolve(session, alert, "cleared")
                        del open_alerts[key]
                        counts["resolved"] += 1
            for key, alert in list(open_alerts.items()):
                if alert.rule not in rules:
                    await _resolve(session, alert, "rule_removed")
                    del open_alerts[key]
                    counts["resolved"] += 1
            await self._publish_gauges(session)
        return counts

    def _fires(self, rule: AlertRule, key: tuple[str, str], seen: Observation) -> bool:
        streak = self._streaks.get(key, 0) + 1 if seen.firing else 0
        self._streaks[key] = streak
        needed = 1 if rule.kind is RuleKind.SERVICE_DOWN else rule.for_checks
        return streak >= needed

    async def _publish_gauges(self, session: AsyncSession) -> None:
        await session.flush()  # count this round's alerts too
        stmt = (
            select(Alert.severity, func.count())
            .where(Alert.state != AlertState.RESOLVED)
            .group_by(Alert.severity)
        )
        found = {row[0]: row[1] for row in await session.execute(stmt)}
        for severity in ("warning", "critical"):
            self._metrics.alerts_open.labels(severity).set(found.get(severity, 0))
