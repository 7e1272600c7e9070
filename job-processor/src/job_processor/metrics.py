"""job-processor's own metrics: what happened to jobs, per service and outcome, at /metrics.

Counted when a transition is *committed*, not when :func:`job_processor.jobs.states.move` is
called: a move whose transaction rolls back (a lost lease, a crash, a conflict) never happened,
and counting it would make the failure rate lie. ``states`` notes each move on the session
(``session.info``); a listener on every session's commit turns the notes into counts, one on
its rollback drops them. The app's sessions carry this app's metrics in their ``info``, so two
apps in one process (the tests) never count each other's jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

METRICS_KEY = "job_metrics"
_PENDING_KEY = "job_metrics_pending"

# From minutes (a small chromosome on a quiet server) to a day (TOPMed's queue on a busy week).
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)


@dataclass(frozen=True)
class Transition:
    """One committed move, as the metrics need it."""

    service: str
    previous: str | None
    status: str
    # created -> finished, for a move to a final state (None otherwise)
    duration_seconds: float | None


class JobMetrics:
    """Built once per app in its registry (``create_service_app(..., metrics=JobMetrics)``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "jobs_transitions_total",
            "Committed job status changes, by service and new status.",
            ["service", "status"],
            registry=registry,
        )
        self.finished = Counter(
            "jobs_finished_total",
            "Jobs that reached a final state, by service and outcome "
            "(completed, failed, cancelled).",
            ["service", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "jobs_duration_seconds",
            "Time from submission request to the final state, by service and outcome.",
            ["service", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def observe(self, move: Transition) -> None:
        self.transitions.labels(move.service, move.status).inc()
        if move.duration_seconds is not None:
            self.finished.labels(move.service, move.status).inc()
            self.duration.labels(move.service, move.status).observe(move.duration_seconds)


def note(info: dict[str, Any], move: Transition) -> None:
    """Remember ``move`` on a session's ``info`` until its transaction ends (see the module)."""
    if METRICS_KEY in info:
        info.setdefault(_PENDING_KEY, []).append(move)


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    moves: list[Transition] = session.info.pop(_PENDING_KEY, [])
    metrics: JobMetrics | None = session.info.get(METRICS_KEY)
    if metrics is not None:
        for move in moves:
            metrics.observe(move)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
