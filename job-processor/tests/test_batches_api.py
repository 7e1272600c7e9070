"""Federated batches: a parent and one checked child per target in one transaction, the parent's
status and progress derived from the children, cancelling the parent cancels the children."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from job_processor.batches.service import derive_progress, derive_status
from job_processor.models import Job, JobBatch, JobStatus, OutboxEvent

from .factories import job_row

S = JobStatus


async def two_services(world, user):
    michigan = world.add_service()
    wes = world.add_service(
        id=str(uuid.uuid4()),
        slug="ilifu",
        name="ILIFU WES",
        kind="ga4gh_wes",
        requires_credentials=False,
        credential_type="none",
        workflow_profile={"workflow_url": "imputation.cwl", "params": {}},
    )
    world.store_credentials(user.id, michigan)
    return michigan, wes


def batch_body(files, *targets, **overrides):
    body = {
        "name": "chr20 everywhere",
        "input_file_ids": [f["id"] for f in files],
        "build": "hg19",
        "phasing": "eagle",
        "population": "AFR",
        "tags": ["fed"],
        "targets": [{"service": s, "panel": "1000g-phase3"} for s in targets],
    }
    return body | overrides


async def count(db, model):
    return await db.scalar(select(func.count()).select_from(model))


async def test_a_batch_creates_its_children_in_one_go(client, db, world, alice):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    response = await client.post(
        "/jobs/batch", json=batch_body(files, "michigan", "ilifu"), headers=alice.headers
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    assert response.headers["location"] == f"/jobs/batches/{batch['id']}"
    assert batch["status"] == "pending"
    assert batch["progress"] == 0
    assert batch["counts"] == {"pending": 2}
    assert {c["service_slug"] for c in batch["children"]} == {"michigan", "ilifu"}
    assert all(c["batch_id"] == batch["id"] for c in batch["children"])
    events = (await db.scalars(select(OutboxEvent))).all()
    assert {e.payload["batch_id"] for e in events} == {batch["id"]}
    listed = await client.get("/jobs/batches", headers=alice.headers)
    assert [b["id"] for b in listed.json()["items"]] == [batch["id"]]
    got = await client.get(f"/jobs/batches/{batch['id']}", headers=alice.headers)
    assert got.json()["counts"] == {"pending": 2}
    child = await client.get(f"/jobs/{batch['children'][0]['id']}", headers=alice.headers)
    assert child.json()["batch_id"] == batch["id"]


async def test_one_bad_target_refuses_the_whole_batch_naming_it(client, db, world, alice):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    body = batch_body(files, "michigan", "ilifu")
    body["targets"][1]["panel"] = "topmed-r3"
    response = await client.post("/jobs/batch", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert errors[0]["pointer"] == "#/body/targets/1/panel"
    assert errors[0]["code"] == "panel_not_offered"
    assert errors[0]["message"].startswith("ilifu:")
    assert await count(db, Job) == 0
    assert await count(db, JobBatch) == 0


async def test_problems_of_every_target_are_reported_together(client, db, world, alice, bob):
    await two_services(world, alice)
    files = [world.add_file(bob.id)]  # not alice's: every target refuses it
    response = await client.post(
        "/jobs/batch", json=batch_body(files, "michigan", "ilifu"), headers=alice.headers
    )
    assert response.status_code == 422
    pointers = {e["pointer"].split("/")[3] for e in response.json()["errors"]}
    assert pointers == {"0", "1"}
    assert await count(db, Job) == 0


async def test_a_repeated_target_or_a_single_one_is_refused(client, db, world, alice):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    twice = await client.post(
        "/jobs/batch", json=batch_body(files, "michigan", "michigan"), headers=alice.headers
    )
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["code"] == "duplicate_target"
    single = await client.post(
        "/jobs/batch", json=batch_body(files, "michigan"), headers=alice.headers
    )
    assert single.status_code == 422
    assert await count(db, JobBatch) == 0


async def test_a_batch_larger_than_the_quota_is_refused_with_the_limit(client, db, world, alice):
    await two_services(world, alice)
    third = world.add_service(id=str(uuid.uuid4()), slug="topmed", name="TOPMed")
    world.store_credentials(alice.id, third)
    files = [world.add_file(alice.id)]
    response = await client.post(
        "/jobs/batch",
        json=batch_body(files, "michigan", "ilifu", "topmed"),
        headers=alice.headers,
    )
    assert response.status_code == 429
    problem = response.json()
    assert "a batch of 3 targets needs 3 job slots" in problem["detail"]
    assert problem["limit"] == 2
    assert await count(db, Job) == 0
    assert await count(db, JobBatch) == 0


async def test_an_idempotency_key_replays_the_batch(client, db, world, alice):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    headers = alice.headers | {"Idempotency-Key": "batch-1"}
    body = batch_body(files, "michigan", "ilifu")
    first = await client.post("/jobs/batch", json=body, headers=headers)
    second = await client.post("/jobs/batch", json=body, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    other = await client.post(
        "/jobs/batch", json=body | {"name": "something else"}, headers=headers
    )
    assert other.status_code == 422
    assert await count(db, Job) == 2


async def test_cancelling_the_parent_cancels_every_unfinished_child(client, db, world, alice):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    batch = (
        await client.post(
            "/jobs/batch", json=batch_body(files, "michigan", "ilifu"), headers=alice.headers
        )
    ).json()
    sent_id = uuid.UUID(batch["children"][0]["id"])
    sent = await db.get(Job, sent_id)
    sent.status = S.RUNNING  # one already running remotely: it goes through cancelling
    await db.commit()
    response = await client.post(f"/jobs/batches/{batch['id']}/cancel", headers=alice.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "cancelling"
    assert body["counts"] == {"cancelling": 1, "cancelled": 1}
    again = await client.post(f"/jobs/batches/{batch['id']}/cancel", headers=alice.headers)
    assert again.status_code == 202  # the running one is still winding down
    db.expire_all()
    job = await db.get(Job, sent_id)
    job.status = S.CANCELLED
    await db.commit()
    done = await client.post(f"/jobs/batches/{batch['id']}/cancel", headers=alice.headers)
    assert done.status_code == 409
    final = await client.get(f"/jobs/batches/{batch['id']}", headers=alice.headers)
    assert final.json()["status"] == "cancelled"
    assert final.json()["progress"] == 1


async def test_someone_elses_batch_is_a_404(client, db, world, alice, bob):
    await two_services(world, alice)
    files = [world.add_file(alice.id)]
    batch = (
        await client.post(
            "/jobs/batch", json=batch_body(files, "michigan", "ilifu"), headers=alice.headers
        )
    ).json()
    url = f"/jobs/batches/{batch['id']}"
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (await client.post(f"{url}/cancel", headers=bob.headers)).status_code == 404
    assert (await client.get("/jobs/batches", headers=bob.headers)).json()["items"] == []
    assert (
        await client.get(f"/jobs/batches/{uuid.uuid4()}", headers=alice.headers)
    ).status_code == 404


def kids(*statuses, progress=None):
    return [job_row(status=s, progress=progress) for s in statuses]


@pytest.mark.parametrize(
    ("statuses", "cancel", "expected"),
    [
        ((S.PENDING, S.SUBMITTING), False, "pending"),
        ((S.PENDING, S.QUEUED), False, "running"),
        ((S.RUNNING, S.COMPLETED), False, "running"),
        ((S.PENDING, S.FAILED), False, "running"),
        ((S.RUNNING, S.CANCELLED), True, "cancelling"),
        ((S.COMPLETED, S.COMPLETED), False, "completed"),
        ((S.COMPLETED, S.FAILED), False, "partially_completed"),
        ((S.COMPLETED, S.CANCELLED), True, "partially_completed"),
        ((S.FAILED, S.CANCELLED), False, "failed"),
        ((S.CANCELLED, S.CANCELLED), True, "cancelled"),
    ],
)
def test_the_parent_status_rules(statuses, cancel, expected):
    assert derive_status(kids(*statuses), cancel) == expected


def test_progress_counts_finished_children_as_done():
    children = [
        job_row(status=S.RUNNING, progress=0.5),
        job_row(status=S.FAILED),
        job_row(status=S.PENDING),
        job_row(status=S.QUEUED, progress=None),
    ]
    assert derive_progress(children) == pytest.approx(0.375)
