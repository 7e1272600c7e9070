"""Job metrics at /metrics: committed moves counted per service and outcome, rolled-back ones
never (job_processor.metrics)."""

from __future__ import annotations

import re

from job_processor.jobs import states
from job_processor.models import JobStatus

from .factories import job_row
from .test_jobs_api import job_body, ready


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_a_created_then_cancelled_job_is_counted_once_per_move(client, world, alice):
    service, files = await ready(world, alice)
    created = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    assert created.status_code == 202, created.text
    cancel = await client.post(f"/jobs/{created.json()['id']}/cancel", headers=alice.headers)
    assert cancel.json()["status"] == "cancelled"
    text = (await client.get("/metrics")).text
    slug = service["slug"]
    assert sample(text, "jobs_transitions_total", service=slug, status="pending") == 1
    assert sample(text, "jobs_transitions_total", service=slug, status="cancelled") == 1
    assert sample(text, "jobs_finished_total", service=slug, outcome="cancelled") == 1
    assert sample(text, "jobs_finished_total", service=slug, outcome="completed") == 0
    assert sample(text, "jobs_duration_seconds_count", service=slug, outcome="cancelled") == 1


async def test_a_move_whose_transaction_rolls_back_is_not_counted(app, client, db):
    job = job_row(service_slug="rolled-back", status=JobStatus.RUNNING)
    db.add(job)
    await db.commit()
    sessionmaker = app.state.workers.sessionmaker  # the app's own sessions count
    async with sessionmaker() as session:
        row = await session.get(type(job), job.id)
        await states.move(session, row, JobStatus.COMPLETED)
        await session.rollback()
    async with sessionmaker() as session:
        row = await session.get(type(job), job.id)
        await states.move(session, row, JobStatus.FAILED, message="the server lost it")
        await session.commit()
    text = (await client.get("/metrics")).text
    assert sample(text, "jobs_finished_total", service="rolled-back", outcome="completed") == 0
    assert sample(text, "jobs_finished_total", service="rolled-back", outcome="failed") == 1
