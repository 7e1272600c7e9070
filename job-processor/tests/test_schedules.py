"""Scheduled jobs: once or on a cron expression, checked when saved, fired through the template
with every job check, each occurrence exactly once even with two schedulers racing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from fedimpute_shared.db import create_engine, create_sessionmaker, utcnow
from job_processor.clients import UpstreamError
from job_processor.models import Job, JobStatus, ScheduledJob, ScheduledJobRun
from job_processor.schedules.service import Scheduler, next_occurrence


async def template_of(client, world, user, service=None, **overrides):
    service = service or world.add_service()
    world.store_credentials(user.id, service)
    body = {
        "name": f"nightly chr20 {uuid.uuid4().hex[:6]}",
        "service": service["slug"],
        "panel": "1000g-phase3",
        "build": "hg19",
        "population": "AFR",
    } | overrides
    response = await client.post("/job-templates", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def schedule(client, world, user, template=None, **overrides):
    template = template or await template_of(client, world, user)
    file = world.add_file(user.id)
    body = {"template_id": template["id"], "input_file_ids": [file["id"]]} | overrides
    return await client.post("/scheduled-jobs", json=body, headers=user.headers)


async def count(db, model):
    return await db.scalar(select(func.count()).select_from(model))


async def make_due(db, schedule_id):
    await db.execute(
        update(ScheduledJob)
        .where(ScheduledJob.id == uuid.UUID(schedule_id))
        .values(next_run_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()


async def test_a_once_schedule_fires_one_job_through_the_template(app, client, db, world, alice):
    at = (utcnow() + timedelta(hours=1)).isoformat()
    response = await schedule(client, world, alice, run_at=at)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["next_run_at"] == created["run_at"]
    scheduler: Scheduler = app.state.scheduler
    assert await scheduler.fire_due() == 0  # not yet due
    await make_due(db, created["id"])
    assert await scheduler.fire_due() == 1
    job = (await db.scalars(select(Job))).one()
    assert job.owner_id == alice.id
    assert job.template_id == uuid.UUID(created["template_id"])
    assert "scheduled" in job.tags
    got = (await client.get(f"/scheduled-jobs/{created['id']}", headers=alice.headers)).json()
    assert got["next_run_at"] is None
    assert got["last_job_id"] == str(job.id)
    assert got["run_count"] == 1
    runs = await client.get(f"/scheduled-jobs/{created['id']}/runs", headers=alice.headers)
    assert [r["job_id"] for r in runs.json()] == [str(job.id)]
    assert await scheduler.fire_due() == 0  # a once schedule fires once
    template = await client.get(f"/job-templates/{created['template_id']}", headers=alice.headers)
    assert template.json()["usage_count"] == 1


async def test_a_cron_schedule_moves_to_its_next_occurrence(app, client, db, world, alice):
    response = await schedule(
        client, world, alice, cron="0 3 * * *", timezone="Africa/Johannesburg"
    )
    assert response.status_code == 201, response.text
    created = response.json()
    first = datetime.fromisoformat(created["next_run_at"])
    assert first > utcnow()
    assert first.astimezone(UTC).hour == 1  # 03:00 in Johannesburg (UTC+2)
    await make_due(db, created["id"])
    assert await app.state.scheduler.fire_due() == 1
    got = (await client.get(f"/scheduled-jobs/{created['id']}", headers=alice.headers)).json()
    assert datetime.fromisoformat(got["next_run_at"]) > utcnow()
    assert got["run_count"] == 1


def test_missed_occurrences_collapse_into_the_next_future_one():
    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    assert next_occurrence("0 * * * *", "UTC", now) == datetime(2026, 11, 29, 13, tzinfo=UTC)
    assert next_occurrence("0 3 * * 1", "UTC", now) == datetime(2026, 11, 30, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"cron": "61 * * * *"}, "cron_invalid"),
        ({"cron": "0 0 * * * *"}, "cron_invalid"),  # 6 fields
        ({"cron": "*/5 * * * *"}, "cron_too_frequent"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone_unknown"),
        ({"run_at": "2020-01-01T00:00:00Z"}, "run_at_past"),
    ],
)
async def test_bad_timing_is_refused_and_nothing_stored(client, db, world, alice, overrides, code):
    response = await schedule(client, world, alice, **overrides)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["code"] == code
    assert await count(db, ScheduledJob) == 0


async def test_both_or_neither_timing_and_a_naive_time_are_request_errors(client, db, world, alice):
    at = (utcnow() + timedelta(hours=1)).isoformat()
    both = await schedule(client, world, alice, run_at=at, cron="0 3 * * *")
    assert both.status_code == 422
    neither = await schedule(client, world, alice)
    assert neither.status_code == 422
    naive = await schedule(client, world, alice, run_at="2030-01-01T00:00:00")
    assert naive.status_code == 422
    assert await count(db, ScheduledJob) == 0


async def test_files_and_templates_are_checked_when_saved(client, db, world, alice, bob):
    template = await template_of(client, world, alice)
    bobs = world.add_file(bob.id)
    at = (utcnow() + timedelta(hours=1)).isoformat()
    response = await client.post(
        "/scheduled-jobs",
        json={"template_id": template["id"], "input_file_ids": [bobs["id"]], "run_at": at},
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "file_not_found"
    others = await schedule(client, world, bob, template=template, run_at=at)
    assert others.status_code == 404  # alice's private template
    assert await count(db, ScheduledJob) == 0


async def test_someone_elses_schedule_is_a_404(client, db, world, alice, bob):
    created = (await schedule(client, world, alice, cron="0 3 * * *")).json()
    url = f"/scheduled-jobs/{created['id']}"
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (
        await client.patch(url, json={"enabled": False}, headers=bob.headers)
    ).status_code == 404
    assert (await client.delete(url, headers=bob.headers)).status_code == 404
    assert (await client.get(f"{url}/runs", headers=bob.headers)).status_code == 404
    assert (await client.get("/scheduled-jobs", headers=bob.headers)).json()["items"] == []


async def test_a_paused_schedule_does_not_fire_and_resumes_in_the_future(
    app, client, db, world, alice
):
    created = (await schedule(client, world, alice, cron="0 3 * * *")).json()
    url = f"/scheduled-jobs/{created['id']}"
    paused = await client.patch(url, json={"enabled": False}, headers=alice.headers)
    assert paused.json()["enabled"] is False
    await make_due(db, created["id"])
    assert await app.state.scheduler.fire_due() == 0
    resumed = await client.patch(url, json={"enabled": True}, headers=alice.headers)
    assert datetime.fromisoformat(resumed.json()["next_run_at"]) > utcnow()
    changed = await client.patch(url, json={"cron": "*/10 * * * *"}, headers=alice.headers)
    assert changed.status_code == 422
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert await count(db, ScheduledJob) == 0


async def test_a_refused_occurrence_is_recorded_and_the_schedule_goes_on(
    app, client, db, world, alice
):
    created = (await schedule(client, world, alice, cron="0 3 * * *")).json()
    file_id = created["input_file_ids"][0]
    world.files[file_id]["status"] = "invalid"  # the file went bad after the schedule was saved
    await make_due(db, created["id"])
    assert await app.state.scheduler.fire_due() == 1
    assert await count(db, Job) == 0
    got = (await client.get(f"/scheduled-jobs/{created['id']}", headers=alice.headers)).json()
    assert "invalid" in got["last_error"]
    assert datetime.fromisoformat(got["next_run_at"]) > utcnow()
    runs = (await client.get(f"/scheduled-jobs/{created['id']}/runs", headers=alice.headers)).json()
    assert runs[0]["job_id"] is None
    assert "invalid" in runs[0]["error"]


async def test_our_upstreams_down_postpone_the_same_occurrence(
    app, client, db, world, alice, monkeypatch
):
    created = (await schedule(client, world, alice, cron="0 3 * * *")).json()
    await make_due(db, created["id"])

    async def down(ref):
        raise UpstreamError("service-registry", "unreachable (ConnectError)")

    monkeypatch.setattr(app.state.scheduler.ctx.upstreams.registry, "service", down)
    assert await app.state.scheduler.fire_due() == 0
    row = await db.get(ScheduledJob, uuid.UUID(created["id"]))
    await db.refresh(row)
    assert row.next_run_at > utcnow()
    assert row.next_run_at < utcnow() + timedelta(minutes=5)
    assert row.last_error
    assert await count(db, ScheduledJobRun) == 0


async def test_two_schedulers_fire_each_occurrence_once(
    app, client, db, world, alice, make_user, settings
):
    users = [alice, make_user(), make_user()]
    service = world.add_service()
    ids = []
    for user in users:
        for _ in range(2):
            template = await template_of(client, world, user, service)
            created = await schedule(client, world, user, template=template, cron="0 3 * * *")
            ids.append(created.json()["id"])
    for schedule_id in ids:
        await make_due(db, schedule_id)
    other_engine = create_engine(settings.database_url)
    try:
        first: Scheduler = app.state.scheduler
        second = Scheduler(create_sessionmaker(other_engine), first.ctx)
        fired = await asyncio.gather(first.fire_due(), second.fire_due(), first.fire_due())
    finally:
        await other_engine.dispose()
    assert sum(fired) == len(ids)
    assert (await db.scalars(select(ScheduledJob.last_error))).all() == [None] * len(ids)
    assert await count(db, Job) == len(ids)
    assert await count(db, ScheduledJobRun) == len(ids)
    per_schedule = await db.execute(
        select(ScheduledJobRun.schedule_id, func.count()).group_by(ScheduledJobRun.schedule_id)
    )
    assert all(n == 1 for _, n in per_schedule.all())
    assert await first.fire_due() == 0


async def test_the_job_quota_applies_to_scheduled_runs(app, client, db, world, alice):
    template = await template_of(client, world, alice)
    for _ in range(2):
        db.add(
            Job(
                owner_id=alice.id,
                name="busy",
                service_id=uuid.uuid4(),
                service_slug="michigan",
                service_type="michigan",
                panel_id=uuid.uuid4(),
                panel_slug="p",
                panel_remote_id="p",
                build="hg19",
                phasing="eagle",
                mode="imputation",
                input_file_ids=[uuid.uuid4()],
                status=JobStatus.RUNNING,
            )
        )
    await db.commit()
    created = (await schedule(client, world, alice, template=template, cron="0 3 * * *")).json()
    await make_due(db, created["id"])
    assert await app.state.scheduler.fire_due() == 1
    got = (await client.get(f"/scheduled-jobs/{created['id']}", headers=alice.headers)).json()
    assert "the limit is 2" in got["last_error"]
