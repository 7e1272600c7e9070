"""Rows for tests: a job as POST /jobs would store it."""

from __future__ import annotations

import uuid
from typing import Any

from job_processor.models import Job, JobMode, JobStatus, Phasing


def job_row(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "owner_id": uuid.uuid4(),
        "name": "chr20 study",
        "service_id": uuid.uuid4(),
        "service_slug": "michigan",
        "service_type": "michigan",
        "panel_id": uuid.uuid4(),
        "panel_slug": "1000g-phase3",
        "panel_remote_id": "apps@1000g-phase-3-v5",
        "build": "hg19",
        "phasing": Phasing.EAGLE,
        "mode": JobMode.IMPUTATION,
        "tags": [],
        "input_file_ids": [uuid.uuid4()],
        "inputs": [],
        "status": JobStatus.PENDING,
        "remote_messages": [],
        "collected": {},
        "result_notes": [],
        "result_file_ids": [],
    }
    values.update(overrides)
    return Job(**values)
