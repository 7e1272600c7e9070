"""The workers against an in-memory remote: submit once (even when the answer is lost), follow,
pause rather than fail on transient trouble, cancel, fail clearly, store results."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from fedimpute_shared.db import utcnow
from job_processor.adapters.base import AuthFailed, RemoteUnavailable
from job_processor.models import Job, JobStatus, OutboxEvent
from job_processor.passwords import PasswordBox

from .conftest import FILES
from .factories import job_row
from .fake_adapter import FakeRemote

S = JobStatus


@pytest.fixture
def remote() -> FakeRemote:
    return FakeRemote()


@pytest.fixture
async def workers(app, client, remote, world):
    app_workers = app.state.workers
    app_workers.adapters = lambda kind: remote
    stored: dict[str, bytes] = {}

    def store(request: httpx.Request) -> httpx.Response:
        body = request.read()
        file_id = str(uuid.uuid4())
        stored[request.url.params["filename"]] = body
        return httpx.Response(201, json={"id": file_id, "sha256": hashlib.sha256(body).hexdigest()})

    def content(request: httpx.Request, file_id: str) -> httpx.Response:
        return httpx.Response(200, content=b"##fileformat=VCFv4.2\n" * 100)

    world.mock.post(f"{FILES}/internal/files").mock(side_effect=store)
    world.mock.get(url__regex=rf"{FILES}/internal/files/(?P<file_id>[^/]+)/content").mock(
        side_effect=content
    )
    app_workers.stored = stored
    return app_workers


async def new_job(db, world, settings, **overrides):
    service = world.add_service(requires_credentials=False)
    input_id = uuid.uuid4()
    job = job_row(
        service_id=uuid.UUID(service["id"]),
        service_slug=service["slug"],
        inputs=[
            {"file_id": str(input_id), "filename": "chr20.vcf.gz", "size": 2100, "sha256": None}
        ],
        input_file_ids=[input_id],
        next_action_at=utcnow(),
        **overrides,
    )
    job.result_password_encrypted = PasswordBox(settings.result_password_key).seal(
        "pw-123", str(job.id)
    )
    db.add(job)
    await db.commit()
    return job


async def reload(db, job):
    job_id = job.id
    db.expire_all()
    return await db.get(Job, job_id)


async def due(db, job):
    job_id = job.id
    await db.execute(
        update(Job).where(Job.id == job_id).values(next_action_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()


async def events(db, job):
    job_id = str(job.id)
    rows = (await db.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))).all()
    return [(r.event_type, r.payload.get("status")) for r in rows if r.payload["job_id"] == job_id]


async def test_a_job_goes_from_pending_to_completed_with_its_results(
    db, world, settings, workers, remote
):
    job = await new_job(db, world, settings)
    assert await workers.submit_due() == 1
    job = await reload(db, job)
    assert (job.status, job.remote_id, job.submit_attempts) == (S.QUEUED, "job-1", 1)
    assert remote.jobs["job-1"]["read"] == 2100  # the input was streamed from file-manager
    assert remote.jobs["job-1"]["spec"].result_password == "pw-123"
    assert job.lease_owner is None

    remote.set("job-1", "running", progress=0.5, steps=["QC passed", "Imputing chr20"])
    await due(db, job)
    await workers.poll_due()
    job = await reload(db, job)
    assert (job.status, job.progress, job.remote_messages) == (
        S.RUNNING,
        0.5,
        ["QC passed", "Imputing chr20"],
    )

    remote.set("job-1", "completed")
    remote.results_of["job-1"] = [("chr20.zip", b"z" * 300_000), ("qc.html", b"<html/>")]
    await due(db, job)
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.RUNNING
    assert job.results_ready
    await workers.collect_due()
    job = await reload(db, job)
    assert job.status is S.COMPLETED
    assert len(job.result_file_ids) == 2
    assert workers.stored == {"chr20.zip": b"z" * 300_000, "qc.html": b"<html/>"}
    assert job.result_notes == ["node-only.log: stays on the node"]
    assert "2 result files stored" in job.status_message
    assert await events(db, job) == [
        ("job.status_changed", "submitting"),
        ("job.status_changed", "queued"),
        ("job.status_changed", "running"),
        ("job.status_changed", "completed"),
        ("job.completed", None),
    ]


async def test_a_lost_submit_answer_is_reconciled_not_resent(db, world, settings, workers, remote):
    job = await new_job(db, world, settings)
    remote.lose_answer = True  # the remote accepts, our side sees a timeout
    await workers.submit_due()
    job = await reload(db, job)
    assert job.status is S.SUBMITTING
    assert "cannot be reached" in job.paused_note
    await due(db, job)
    await workers.submit_due()
    job = await reload(db, job)
    assert (job.status, job.remote_id) == (S.QUEUED, "job-1")
    assert remote.submits == 1
    assert remote.calls == ["submit", "find"]
    assert job.paused_note is None


async def test_a_crash_after_the_remote_accepted_does_not_submit_twice(
    db, world, settings, workers, remote
):
    """The worker died after the remote accepted and before our commit: the attempt was
    committed first, the lease expires, and the next worker finds the job remotely."""
    job = await new_job(db, world, settings, status=S.SUBMITTING, submit_attempts=1)
    remote.jobs["job-9"] = {"tag": f"fedimpute-{job.id}", "state": "running"}
    await db.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(lease_owner="dead-worker", lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
    await workers.submit_due()
    job = await reload(db, job)
    assert (job.status, job.remote_id, remote.submits) == (S.QUEUED, "job-9", 0)


async def test_a_held_lease_is_not_taken(db, world, settings, workers, remote):
    job = await new_job(db, world, settings)
    await db.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(lease_owner="other", lease_expires_at=utcnow() + timedelta(seconds=60))
    )
    await db.commit()
    assert await workers.submit_due() == 0
    assert remote.submits == 0


async def test_an_unreachable_service_pauses_its_jobs_and_opens_the_breaker(
    db, world, settings, workers, remote
):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1", submit_attempts=1)
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    remote.fail_next = [RemoteUnavailable("status: 503 Service Unavailable")] * 3
    for _ in range(3):
        await due(db, job)
        await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.RUNNING
    assert "cannot be reached (status: 503" in job.paused_note
    calls = len(remote.calls)
    await due(db, job)
    await workers.poll_due()  # the breaker is open: the service is not called
    assert len(remote.calls) == calls
    job = await reload(db, job)
    assert job.status is S.RUNNING
    assert job.paused_note
    assert await events(db, job) == []  # nothing failed, nothing changed


async def test_a_registry_unhealthy_service_pauses_with_a_note(
    db, world, settings, workers, remote
):
    job = await new_job(db, world, settings, status=S.QUEUED, remote_id="job-1")
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    world.health[str(job.service_id)] = "unhealthy"
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.QUEUED
    assert "unhealthy according to the registry" in job.paused_note
    assert remote.calls == []


async def test_remote_failure_text_reaches_the_user(db, world, settings, workers, remote):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1")
    remote.jobs["job-1"] = {"tag": "x", "state": "failed", "message": "chr20: less than 50 samples"}
    await workers.poll_due()
    job = await reload(db, job)
    assert (job.status, job.status_message) == (S.FAILED, "chr20: less than 50 samples")
    assert ("job.failed", None) in await events(db, job)


async def test_a_vanished_remote_job_is_a_clear_failure(db, world, settings, workers, remote):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-404")
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.FAILED
    assert "no longer exists on michigan" in job.status_message


async def test_an_expired_token_pauses_with_a_message(db, world, settings, workers, remote):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1")
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    remote.fail_next = [AuthFailed("401 Unauthorized")]
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.RUNNING
    assert "refused your credentials" in job.paused_note


async def test_a_rejected_submission_fails_with_the_remote_reason(
    db, world, settings, workers, remote
):
    from job_processor.adapters.base import RemoteRejected

    job = await new_job(db, world, settings)
    remote.fail_next = [RemoteRejected("submit: Parameter 'population' is invalid")]
    await workers.submit_due()
    job = await reload(db, job)
    assert job.status is S.FAILED
    assert "Parameter 'population' is invalid" in job.status_message


async def test_a_job_past_the_maximum_run_time_fails(db, world, settings, workers, remote):
    job = await new_job(
        db,
        world,
        settings,
        status=S.RUNNING,
        remote_id="job-1",
        submitted_at=utcnow() - timedelta(hours=100),
    )
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.FAILED
    assert "maximum run time of 72 hours" in job.status_message


async def test_polling_backs_off_while_nothing_changes(db, world, settings, workers, remote):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1")
    remote.jobs["job-1"] = {"tag": "x", "state": "running", "progress": 0.1}
    intervals = []
    for _ in range(4):
        await due(db, job)
        await workers.poll_due()
        intervals.append((await reload(db, job)).poll_interval_seconds)
    assert intervals == [5, 7.5, 11.25, 16.875]
    remote.set("job-1", "running", progress=0.2)
    await due(db, job)
    await workers.poll_due()
    assert (await reload(db, job)).poll_interval_seconds == 5


async def test_cancel_is_sent_and_confirmed(db, world, settings, workers, remote, client, alice):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1", owner_id=alice.id)
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    assert (await client.post(f"/jobs/{job.id}/cancel", headers=alice.headers)).json()[
        "status"
    ] == "cancelling"
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.CANCELLED
    assert remote.calls == ["cancel", "status"]
    assert ("job.cancelled", None) in await events(db, job)


async def test_a_cancel_the_remote_ignores_is_followed_with_a_note(
    db, world, settings, workers, remote, client, alice
):
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1", owner_id=alice.id)
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    remote.cancel_ok = False
    await client.post(f"/jobs/{job.id}/cancel", headers=alice.headers)
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.CANCELLING
    assert "does not stop jobs on request" in job.paused_note
    remote.set("job-1", "completed")
    await due(db, job)
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.CANCELLED
    assert remote.calls.count("cancel") == 1


async def test_cancel_while_submitting_is_sent_after_the_answer(
    db, world, settings, workers, remote
):
    job = await new_job(db, world, settings, status=S.CANCELLING, submit_attempts=0)
    await workers.submit_due()
    job = await reload(db, job)
    assert job.status is S.CANCELLED
    assert remote.submits == 0


async def test_a_wes_node_gets_signed_links_to_the_inputs(db, world, settings, workers, remote):
    world.mock.post(url__regex=rf"{FILES}/internal/files/[^/]+/links").respond(
        201, json={"token": "signed-token"}
    )
    job = await new_job(db, world, settings)
    world.services[str(job.service_id)].update(
        kind="ga4gh_wes", workflow_profile={"input_delivery": "url", "params": {}}
    )
    await workers.submit_due()
    spec = remote.jobs["job-1"]["spec"]
    assert [i.url for i in spec.inputs] == ["http://127.0.0.1:8000/api/files/download/signed-token"]
    attachment = await new_job(db, world, settings)
    world.services[str(attachment.service_id)].update(
        kind="ga4gh_wes", workflow_profile={"input_delivery": "attachment", "params": {}}
    )
    await workers.submit_due()
    assert [i.url for i in remote.jobs["job-2"]["spec"].inputs] == [None]


async def test_a_service_down_past_the_maximum_run_time_fails_the_job(
    db, world, settings, workers, remote
):
    job = await new_job(
        db,
        world,
        settings,
        status=S.RUNNING,
        remote_id="job-1",
        submitted_at=utcnow() - timedelta(hours=100),
    )
    remote.jobs["job-1"] = {"tag": "x", "state": "running"}
    remote.fail_next = [RemoteUnavailable("status: connection refused")]
    await workers.poll_due()
    job = await reload(db, job)
    assert job.status is S.FAILED
    assert "maximum run time" in job.status_message
    assert "cannot be reached" in job.status_message


def _requests(world, path_part: str) -> int:
    return sum(1 for call in world.mock.calls if path_part in call.request.url.path)


async def _running_jobs(db, world, settings, alice_id, count):
    """``count`` running jobs of one owner on one service that needs credentials."""
    service = world.add_service(requires_credentials=True)
    world.store_credentials(alice_id, service)
    jobs = []
    for n in range(count):
        job = job_row(
            owner_id=alice_id,
            service_id=uuid.UUID(service["id"]),
            service_slug=service["slug"],
            status=S.RUNNING,
            remote_id=f"job-{n}",
            submit_attempts=1,
            next_action_at=utcnow(),
        )
        db.add(job)
        jobs.append(job)
    await db.commit()
    return service, jobs


async def test_a_poll_round_asks_the_registry_and_the_vault_once(
    db, world, settings, workers, remote
):
    owner = uuid.uuid4()
    service, jobs = await _running_jobs(db, world, settings, owner, 6)
    for job in jobs:
        remote.jobs[job.remote_id] = {"tag": "x", "state": "running"}
    world.mock.calls.reset()
    assert await workers.poll_due() == 6
    assert _requests(world, f"/internal/services/{service['id']}") == 2  # record + health
    assert _requests(world, "/service-credentials/") == 1
    assert remote.calls.count("status") == 6
    ids = [job.id for job in jobs]
    db.expire_all()
    for job_id in ids:
        found = await db.get(Job, job_id)
        assert (found.status, found.paused_note, found.lease_owner) == (S.RUNNING, None, None)
    # The next round within the cache's lifetime asks neither again.
    await db.execute(update(Job).where(Job.id.in_(ids)).values(next_action_at=utcnow()))
    await db.commit()
    assert await workers.poll_due() == 6
    await workers.poll_due()
    assert _requests(world, "/service-credentials/") == 1
    assert _requests(world, f"/internal/services/{service['id']}") == 2


async def test_refused_credentials_are_asked_again_from_the_vault(
    db, world, settings, workers, remote
):
    owner = uuid.uuid4()
    _, (job,) = await _running_jobs(db, world, settings, owner, 1)
    remote.jobs[job.remote_id] = {"tag": "x", "state": "running"}
    world.mock.calls.reset()
    await workers.poll_due()
    assert _requests(world, "/service-credentials/") == 1
    remote.fail_next = [AuthFailed("401 Unauthorized")]
    await due(db, job)
    await workers.poll_due()  # refused: the cached credentials are dropped
    assert "refused your credentials" in (await reload(db, job)).paused_note
    assert _requests(world, "/service-credentials/") == 1
    await due(db, job)
    await workers.poll_due()  # the user fixed the token: it is fetched again, and it works
    assert _requests(world, "/service-credentials/") == 2
    assert (await reload(db, job)).paused_note is None


async def test_a_missing_credential_is_not_remembered(db, world, settings, workers, remote):
    owner = uuid.uuid4()
    _, (job,) = await _running_jobs(db, world, settings, owner, 1)
    world.credentials.clear()
    remote.jobs[job.remote_id] = {"tag": "x", "state": "running"}
    await workers.poll_due()
    assert (await reload(db, job)).status is S.FAILED
    assert workers._credentials == {}


async def test_a_hanging_service_does_not_hold_back_the_others(
    db, world, settings, workers, remote
):
    """A poll round ends at its deadline: the hanging service's poll goes on in the background
    holding its lease, the other service's job is polled round after round, and the late poll
    writes its answer back when the service finally answers."""
    release = asyncio.Event()
    entered = asyncio.Event()

    class Switch:
        """The fast remote, except that status calls to slow.test hang until released."""

        def __getattr__(self, name):
            return getattr(remote, name)

        async def status(self, target, creds, remote_id):
            if target.base_url == "http://slow.test":
                entered.set()
                await release.wait()
            return await remote.status(target, creds, remote_id)

    workers.adapters = lambda kind: Switch()
    workers.settings = settings.model_copy(update={"poll_round_seconds": 0.3})
    fast = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1")
    slow_service = world.add_service(requires_credentials=False, base_url="http://slow.test")
    slow = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-2")
    slow_id, fast_id = slow.id, fast.id
    await db.execute(
        update(Job)
        .where(Job.id == slow_id)
        .values(service_id=uuid.UUID(slow_service["id"]), service_slug=slow_service["slug"])
    )
    await db.commit()
    remote.jobs["job-1"] = {"tag": "x", "state": "running", "progress": 0.1}
    remote.jobs["job-2"] = {"tag": "y", "state": "running", "progress": 0.2}

    started = asyncio.get_running_loop().time()
    assert await workers.poll_due() == 2
    assert asyncio.get_running_loop().time() - started < 5
    assert entered.is_set()
    db.expire_all()
    found = await db.get(Job, fast_id)
    assert (found.progress, found.lease_owner) == (0.1, None)
    held = await db.get(Job, slow_id)
    assert held.lease_owner == workers.name  # still ours while its poll runs

    # The next rounds poll the fast service again and leave the leased slow job alone.
    remote.set("job-1", "running", progress=0.6)
    await db.execute(
        update(Job).where(Job.id.in_((fast_id, slow_id))).values(next_action_at=utcnow())
    )
    await db.commit()
    assert await workers.poll_due() == 1
    db.expire_all()
    assert (await db.get(Job, fast_id)).progress == 0.6
    assert len(workers._stragglers) == 1

    release.set()  # the slow service answers: the late poll writes back and lets go
    await asyncio.gather(*workers._stragglers)
    db.expire_all()
    done = await db.get(Job, slow_id)
    assert (done.progress, done.lease_owner, done.paused_note) == (0.2, None, None)
    assert not workers._stragglers


async def test_shutdown_stops_background_polls_and_leaves_their_leases_to_expire(
    db, world, settings, workers, remote
):
    class Hang:
        def __getattr__(self, name):
            return getattr(remote, name)

        async def status(self, target, creds, remote_id):
            await asyncio.Event().wait()

    workers.adapters = lambda kind: Hang()
    workers.settings = settings.model_copy(update={"poll_round_seconds": 0.2})
    job = await new_job(db, world, settings, status=S.RUNNING, remote_id="job-1")
    job_id = job.id
    assert await workers.poll_due() == 1
    assert len(workers._stragglers) == 1
    await workers.aclose()
    assert not workers._stragglers
    db.expire_all()
    assert (await db.get(Job, job_id)).lease_owner == workers.name  # expires like a crash
