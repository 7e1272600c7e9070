"""Events as producers write them, with sensible values; tests override what they exercise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fedimpute_shared.events import (
    FileValidated,
    JobCompleted,
    JobStatusChanged,
    ServiceHealthChanged,
)
from fedimpute_shared.sealed import seal
from notification_service.events.catalog import AccountMail


def job_completed(owner: uuid.UUID, **overrides: Any) -> JobCompleted:
    values: dict[str, Any] = {
        "producer": "job-processor",
        "job_id": uuid.uuid4(),
        "owner_id": owner,
        "job_name": "chr20 imputation",
        "service_id": uuid.uuid4(),
        "service_slug": "sandbox-michigan",
        "result_file_ids": [uuid.uuid4()],
        "finished_at": datetime.now(UTC),
    }
    return JobCompleted(**(values | overrides))


def job_status(owner: uuid.UUID, status: str, **overrides: Any) -> JobStatusChanged:
    values: dict[str, Any] = {
        "producer": "job-processor",
        "job_id": uuid.uuid4(),
        "owner_id": owner,
        "job_name": "chr20 imputation",
        "service_id": uuid.uuid4(),
        "service_slug": "sandbox-michigan",
        "previous_status": None,
        "status": status,
    }
    return JobStatusChanged(**(values | overrides))


def file_validated(owner: uuid.UUID, **overrides: Any) -> FileValidated:
    values: dict[str, Any] = {
        "producer": "file-manager",
        "file_id": uuid.uuid4(),
        "owner_id": owner,
        "filename": "cohort.vcf.gz",
        "status": "valid",
    }
    return FileValidated(**(values | overrides))


def health_changed(status: str = "unhealthy", **overrides: Any) -> ServiceHealthChanged:
    values: dict[str, Any] = {
        "producer": "service-registry",
        "service_id": uuid.uuid4(),
        "service_slug": "sandbox-wes",
        "previous_status": "healthy",
        "status": status,
        "checked_at": datetime.now(UTC),
    }
    return ServiceHealthChanged(**(values | overrides))


class PasswordReset(AccountMail):
    """user.password_reset_requested as user-service writes it (the delivery contract)."""

    event_type = "user.password_reset_requested"
    version = 2


def password_reset(public_key: str, token: str, **overrides: Any) -> PasswordReset:
    values: dict[str, Any] = {
        "producer": "user-service",
        "user_id": uuid.uuid4(),
        "email": "ada@example.org",
        "username": "ada",
        "sealed_token": seal(public_key, token),
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
    }
    return PasswordReset(**(values | overrides))
