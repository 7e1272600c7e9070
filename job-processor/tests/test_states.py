"""The state machine: allowed moves only; every move stored with its events, in one transaction."""

import asyncio

import pytest
from sqlalchemy import select

from job_processor.jobs import states
from job_processor.models import JobStatus, JobStatusHistory, OutboxEvent

from .factories import job_row

S = JobStatus


def test_final_states_allow_nothing():
    for final in (S.COMPLETED, S.FAILED, S.CANCELLED):
        assert states.ALLOWED[final] == frozenset()
    assert not states.can_move(S.COMPLETED, S.RUNNING)
    assert states.can_move(S.RUNNING, S.QUEUED)  # a preempted WES run waits again


async def test_a_lifecycle_is_stored_with_its_events(db):
    job = job_row()
    db.add(job)
    await states.start(db, job)
    for target in (S.SUBMITTING, S.QUEUED, S.RUNNING):
        await states.move(db, job, target, remote_state="x")
    job.result_file_ids = []
    await states.move(db, job, S.COMPLETED, message="done")
    await db.commit()
    history = (
        await db.scalars(select(JobStatusHistory).order_by(JobStatusHistory.created_at))
    ).all()
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, "pending"),
        ("pending", "submitting"),
        ("submitting", "queued"),
        ("queued", "running"),
        ("running", "completed"),
    ]
    events = (await db.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))).all()
    assert [e.event_type for e in events] == ["job.status_changed"] * 5 + ["job.completed"]
    assert events[-1].payload["job_id"] == str(job.id)
    assert job.finished_at is not None
    assert job.submitted_at is not None
    assert job.started_at is not None
    assert job.progress == 1.0


async def test_an_illegal_move_raises_and_stores_nothing(db):
    job = job_row(status=S.COMPLETED)
    db.add(job)
    await db.flush()
    with pytest.raises(states.IllegalTransition):
        await states.move(db, job, S.RUNNING)
    assert (await db.scalars(select(OutboxEvent))).all() == []


async def test_failure_and_cancel_events_carry_the_message(db):
    failed, cancelled = job_row(), job_row()
    db.add_all([failed, cancelled])
    await states.move(db, failed, S.FAILED, message="chr20 has no variants")
    await states.move(db, cancelled, S.CANCELLED, message="cancelled by its owner")
    await db.commit()
    events = {e.event_type: e.payload for e in (await db.scalars(select(OutboxEvent))).all()}
    assert events["job.failed"]["message"] == "chr20 has no variants"
    assert events["job.cancelled"]["message"] == "cancelled by its owner"


async def test_the_relay_publishes_committed_transitions(client, db, redis, stream):
    job = job_row()
    db.add(job)
    await states.start(db, job)
    await states.move(db, job, S.CANCELLED, message="cancelled by its owner")
    await db.commit()
    for _ in range(400):  # up to 20 s on a busy machine
        entries = await redis.xrange(stream)
        if len(entries) >= 3:
            break
        await asyncio.sleep(0.05)
    types = [fields[b"event_type"].decode() for _, fields in entries]
    assert types == ["job.status_changed", "job.status_changed", "job.cancelled"]
