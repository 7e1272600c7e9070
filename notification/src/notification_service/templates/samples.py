"""Sample data for previews and for checking an admin's template before it is saved: one
realistic event per type, turned into a context exactly as a real one is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fedimpute_shared.events import (
    AlertRaised,
    AlertResolved,
    Event,
    FileExpiring,
    FileValidated,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobStatusChanged,
    ServiceDeactivated,
    ServiceHealthChanged,
)
from notification_service.events.catalog import CATALOG, AccountMail, AccountUnlockMail
from notification_service.templates.context import event_context

__all__ = ["DIGEST", "SAMPLE_TOKEN", "account_action_url", "sample_context"]

DIGEST = "digest"  # the daily digest email's template name (not an event type)
SAMPLE_TOKEN = "sample-one-time-token"

_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
_JOB = {
    "producer": "job-processor",
    "occurred_at": _AT,
    "job_id": uuid.UUID("7c1e1f0e-2b7a-4d55-9b1c-2f3f7a6c9d01"),
    "owner_id": uuid.UUID("0b6f4a52-93a1-4c1e-8a5e-3f1d2c4b5a60"),
    "job_name": "chr20 H3Africa imputation",
    "service_id": uuid.UUID("5d0c3e1a-7f2b-4c8d-9e6f-1a2b3c4d5e6f"),
    "service_slug": "afrigen-d",
}
_FILE = {
    "producer": "file-manager",
    "occurred_at": _AT,
    "file_id": uuid.UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
    "owner_id": _JOB["owner_id"],
    "filename": "cohort_chr20.vcf.gz",
}
_SERVICE = {
    "producer": "service-registry",
    "occurred_at": _AT,
    "service_id": _JOB["service_id"],
    "service_slug": "afrigen-d",
}
_ACCOUNT = {
    "producer": "user-service",
    "occurred_at": _AT,
    "user_id": _JOB["owner_id"],
    "email": "ada@example.org",
    "username": "ada.lovelace",
    "sealed_token": "sealed-sample",
    "expires_at": datetime(2026, 12, 1, 10, 30, tzinfo=UTC),
}

_ALERT = {
    "producer": "monitoring",
    "occurred_at": _AT,
    "alert_id": uuid.UUID("3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"),
    "rule": "external-service-unhealthy",
    "kind": "external_unhealthy",
    "severity": "critical",
    "subject": "afrigen-d",
    "summary": "afrigen-d is unhealthy (3 min)",
    "started_at": _AT,
}

SAMPLES: dict[str, Event] = {
    "alert.raised": AlertRaised(**_ALERT),
    "alert.resolved": AlertResolved(**_ALERT, resolved_at=_AT, reason="cleared"),
    "job.status_changed": JobStatusChanged(**_JOB, previous_status="queued", status="running"),
    "job.completed": JobCompleted(
        **_JOB, result_file_ids=[uuid.uuid5(uuid.NAMESPACE_URL, "r1")], finished_at=_AT
    ),
    "job.failed": JobFailed(
        **_JOB, message="QC failed: fewer than 20 samples left after filtering", finished_at=_AT
    ),
    "job.cancelled": JobCancelled(**_JOB, message="Cancelled by its owner", finished_at=_AT),
    "file.validated": FileValidated(**_FILE, status="valid", warning_count=2),
    "file.expiring": FileExpiring(**_FILE, expires_at=datetime(2026, 12, 3, tzinfo=UTC)),
    "service.health_changed": ServiceHealthChanged(
        **_SERVICE,
        previous_status="healthy",
        status="unhealthy",
        error="connection refused",
        checked_at=_AT,
    ),
    "service.deactivated": ServiceDeactivated(**_SERVICE, reason="unhealthy for 30 days in a row"),
}
for _type, _spec in CATALOG.items():
    if issubclass(_spec.model, AccountMail):
        _extra = {"locked_until": _AT} if _spec.model is AccountUnlockMail else {}
        SAMPLES[_type] = _spec.model(**_ACCOUNT, **_extra)


def account_action_url(app_url: str, path: str, token: str) -> str:
    """The link of an account email (the contract: ``{PUBLIC_BASE_URL}{path}?token=...``)."""
    return f"{app_url}{path}?token={token}"


def sample_context(event_type: str, app_url: str) -> dict[str, Any]:
    """The context a real ``event_type`` template would get, with sample values."""
    if event_type == DIGEST:
        return {
            "username": "ada.lovelace",
            "app_url": app_url,
            "entries": [
                {"subject": "Job “chr20” completed", "link": f"{app_url}/jobs/1"},
                {"subject": "cohort.vcf.gz: ready for imputation", "link": None},
            ],
        }
    spec, event = CATALOG[event_type], SAMPLES[event_type]
    context = event_context(
        event,
        event_type=event_type,
        app_url=app_url,
        link_path=spec.link(event),
        username="ada.lovelace",
    )
    if spec.action_path:
        context["action_url"] = account_action_url(app_url, spec.action_path, SAMPLE_TOKEN)
    return context
