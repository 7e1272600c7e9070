"""The jobs API: creation with every check as a problem naming what to fix, idempotency, quotas,
reads with ownership, cancel, retry, pre-flight, statistics."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from fedimpute_shared.db import utcnow
from job_processor.models import IdempotencyKey, Job, JobStatus, OutboxEvent

from .factories import job_row


def job_body(service, files, **overrides):
    body = {
        "name": "chr20 study",
        "service": service["slug"],
        "panel": "1000g-phase3",
        "input_file_ids": [f["id"] for f in files],
        "build": "hg19",
        "phasing": "eagle",
        "population": "AFR",
        "tags": ["pilot"],
    }
    return body | overrides


async def ready(world, user):
    service = world.add_service()
    world.store_credentials(user.id, service)
    return service, [world.add_file(user.id)]


async def count(db, model=Job):
    return await db.scalar(select(func.count()).select_from(model))


async def test_a_checked_job_is_stored_pending_with_its_event(client, db, world, alice):
    service, files = await ready(world, alice)
    response = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["service_slug"] == "michigan"
    assert body["panel_slug"] == "1000g-phase3"
    assert response.headers["location"] == f"/jobs/{body['id']}"
    job = await db.get(Job, uuid.UUID(body["id"]))
    assert job.inputs[0]["filename"] == "chr20.vcf.gz"
    assert job.result_password_encrypted  # a Cloudgene job has its own result password
    assert job.next_action_at is not None
    events = (await db.scalars(select(OutboxEvent))).all()
    assert [e.event_type for e in events] == ["job.status_changed"]


async def test_someone_elses_file_is_refused_and_nothing_stored(client, db, world, alice, bob):
    service, _ = await ready(world, alice)
    bobs = world.add_file(bob.id)
    response = await client.post("/jobs", json=job_body(service, [bobs]), headers=alice.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"][0]["code"] == "file_not_found"
    assert "not yours" in problem["detail"]
    assert await count(db) == 0


async def test_invalid_and_validating_files_are_refused(client, db, world, alice):
    service, _ = await ready(world, alice)
    bad = world.add_file(alice.id, status="invalid")
    busy = world.add_file(alice.id, status="validating")
    response = await client.post(
        "/jobs", json=job_body(service, [bad, busy]), headers=alice.headers
    )
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert codes == {"file_invalid", "file_validating"}
    assert await count(db) == 0


async def test_a_panel_of_another_service_is_refused(client, db, world, alice):
    service, files = await ready(world, alice)
    world.add_service(
        slug="topmed",
        name="TOPMed",
        panels=[{**service["panels"][0], "slug": "topmed-r3", "remote_id": "topmed-r3"}],
    )
    response = await client.post(
        "/jobs", json=job_body(service, files, panel="topmed-r3"), headers=alice.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "panel_not_offered"
    assert response.json()["errors"][0]["pointer"] == "#/body/panel"


async def test_options_the_panel_does_not_support_are_refused(client, db, world, alice):
    service, files = await ready(world, alice)
    response = await client.post(
        "/jobs",
        json=job_body(service, files, build="hg38", population="SAS"),
        headers=alice.headers,
    )
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert {"build_unsupported", "population_unsupported", "build_mismatch"} <= codes


async def test_limits_of_the_service_are_checked(client, db, world, alice):
    service = world.add_service(
        limits={
            "max_file_size_bytes": 10,
            "min_samples": 100,
            "max_samples": 1000,
            "supported_builds": [],
        }
    )
    world.store_credentials(alice.id, service)
    files = [world.add_file(alice.id)]
    response = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    codes = {e["code"] for e in response.json()["errors"]}
    assert codes == {"file_too_large", "too_few_samples"}


async def test_missing_credentials_are_refused(client, db, world, alice):
    service = world.add_service()
    files = [world.add_file(alice.id)]
    response = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "credentials_missing"


async def test_an_unknown_service_and_a_bad_body_are_problems(client, world, alice):
    response = await client.post(
        "/jobs", json=job_body({"slug": "nope"}, [{"id": str(uuid.uuid4())}]), headers=alice.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "service_not_found"
    bad = await client.post("/jobs", json={"name": "x", "phasing": "magic"}, headers=alice.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_a_viewer_cannot_submit(client, world, make_user):
    viewer = make_user(roles=("viewer",))
    assert (await client.post("/jobs", json={}, headers=viewer.headers)).status_code == 403


async def test_idempotency_key_returns_the_first_job_or_refuses_another_body(
    client, db, world, alice
):
    service, files = await ready(world, alice)
    headers = alice.headers | {"Idempotency-Key": "submit-1"}
    first = await client.post("/jobs", json=job_body(service, files), headers=headers)
    again = await client.post("/jobs", json=job_body(service, files), headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = await client.post("/jobs", json=job_body(service, files, name="other"), headers=headers)
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert await count(db) == 1
    assert await count(db, IdempotencyKey) == 1


async def test_quota_of_concurrent_jobs_states_limit_and_use(client, db, world, alice):
    service, files = await ready(world, alice)
    for _ in range(2):
        ok = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
        assert ok.status_code == 202
    refused = await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    assert refused.status_code == 429
    problem = refused.json()
    assert (problem["quota"], problem["limit"], problem["current"]) == ("concurrent_jobs", 2, 2)
    assert await count(db) == 2


async def test_monthly_quota(client, db, world, make_app, alice):
    from fedimpute_shared.testing.client import app_client

    service, files = await ready(world, alice)
    db.add(job_row(owner_id=alice.id, status=JobStatus.COMPLETED))
    await db.commit()
    async with app_client(make_app(max_jobs_per_month=1)) as c:
        refused = await c.post("/jobs", json=job_body(service, files), headers=alice.headers)
    assert refused.status_code == 429
    assert refused.json()["quota"] == "jobs_per_month"


async def test_other_users_jobs_are_404_and_admins_see_them(
    client, db, world, alice, bob, make_user
):
    job = job_row(owner_id=alice.id)
    db.add(job)
    await db.commit()
    assert (await client.get(f"/jobs/{job.id}", headers=alice.headers)).status_code == 200
    for path in ("", "/history", "/messages", "/results"):
        assert (await client.get(f"/jobs/{job.id}{path}", headers=bob.headers)).status_code == 404
    assert (await client.post(f"/jobs/{job.id}/cancel", headers=bob.headers)).status_code == 404
    admin = make_user(roles=("admin",))
    assert (await client.get(f"/jobs/{job.id}", headers=admin.headers)).status_code == 200
    # an admin's token without the admin scope is only a user's
    narrow = make_user(roles=("admin",), scopes=["jobs:read"])
    assert (await client.get(f"/jobs/{job.id}", headers=narrow.headers)).status_code == 404


async def test_list_filters_and_pages(client, db, alice, bob):
    for i in range(3):
        db.add(
            job_row(
                owner_id=alice.id,
                name=f"j{i}",
                tags=["a"] if i else [],
                status=JobStatus.RUNNING if i == 2 else JobStatus.PENDING,
            )
        )
    db.add(job_row(owner_id=bob.id))
    await db.commit()
    page = (await client.get("/jobs", params={"limit": 2}, headers=alice.headers)).json()
    assert len(page["items"]) == 2
    rest = (
        await client.get(
            "/jobs", params={"limit": 2, "cursor": page["next_cursor"]}, headers=alice.headers
        )
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    names = {j["name"] for j in page["items"] + rest["items"]}
    assert names == {"j0", "j1", "j2"}
    tagged = (await client.get("/jobs", params={"tag": "a"}, headers=alice.headers)).json()["items"]
    assert {j["name"] for j in tagged} == {"j1", "j2"}
    running = (
        await client.get("/jobs", params={"status": "running"}, headers=alice.headers)
    ).json()["items"]
    assert [j["name"] for j in running] == ["j2"]
    forbidden = await client.get("/jobs", params={"owner_id": str(bob.id)}, headers=alice.headers)
    assert forbidden.status_code == 403


async def test_cancel_pending_at_once_running_via_cancelling_finished_is_409(client, db, alice):
    pending = job_row(owner_id=alice.id)
    running = job_row(owner_id=alice.id, status=JobStatus.RUNNING, remote_id="job-1")
    done = job_row(owner_id=alice.id, status=JobStatus.COMPLETED)
    db.add_all([pending, running, done])
    await db.commit()
    r = await client.post(f"/jobs/{pending.id}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["status"]) == (202, "cancelled")
    r = await client.post(f"/jobs/{running.id}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["status"]) == (202, "cancelling")
    r = await client.post(f"/jobs/{done.id}/cancel", headers=alice.headers)
    assert r.status_code == 409
    assert "already completed" in r.json()["detail"]
    history = (await client.get(f"/jobs/{pending.id}/history", headers=alice.headers)).json()
    assert history[-1]["to_status"] == "cancelled"


async def test_retry_on_another_service_with_the_same_panel(client, db, world, alice):
    service, files = await ready(world, alice)
    other = world.add_service(
        slug="h3africa", name="H3Africa", panels=[{**service["panels"][0], "id": str(uuid.uuid4())}]
    )
    world.store_credentials(alice.id, other)
    failed = job_row(
        owner_id=alice.id,
        status=JobStatus.FAILED,
        service_id=uuid.UUID(service["id"]),
        input_file_ids=[uuid.UUID(files[0]["id"])],
        population="AFR",
    )
    running = job_row(owner_id=alice.id, status=JobStatus.RUNNING)
    db.add_all([failed, running])
    await db.commit()
    r = await client.post(
        f"/jobs/{failed.id}/retry", json={"service": "h3africa"}, headers=alice.headers
    )
    assert r.status_code == 202, r.text
    assert (r.json()["service_slug"], r.json()["retry_of_id"]) == ("h3africa", str(failed.id))
    assert (
        await client.post(f"/jobs/{running.id}/retry", headers=alice.headers)
    ).status_code == 409
    lacking = world.add_service(slug="wes", name="WES node", panels=[])
    r = await client.post(
        f"/jobs/{failed.id}/retry", json={"service": lacking["slug"]}, headers=alice.headers
    )
    assert r.status_code == 422


async def test_results_show_the_password_to_the_owner_only(client, db, world, alice, admin):
    service, files = await ready(world, alice)
    created = (
        await client.post("/jobs", json=job_body(service, files), headers=alice.headers)
    ).json()
    mine = (await client.get(f"/jobs/{created['id']}/results", headers=alice.headers)).json()
    assert len(mine["password"]) >= 20
    theirs = (await client.get(f"/jobs/{created['id']}/results", headers=admin.headers)).json()
    assert theirs["password"] is None


async def test_preflight_answers_per_target(client, db, world, alice):
    _good, files = await ready(world, alice)
    world.add_service(slug="locked", name="Locked", id=str(uuid.uuid4()))  # no credentials stored
    world.add_service(
        slug="sick",
        name="Sick",
        requires_credentials=False,
        health={"status": "unhealthy", "last_error": "connection refused"},
    )
    world.add_service(slug="off", name="Off", is_active=False)
    response = await client.post(
        "/jobs/preflight",
        json={"input_file_ids": [files[0]["id"]], "build": "hg19", "population": "AFR"},
        headers=alice.headers,
    )
    assert response.status_code == 200, response.text
    by_slug = {t["service_slug"]: t for t in response.json()["targets"]}
    assert set(by_slug) == {"michigan", "locked", "sick"}
    assert by_slug["michigan"]["ok"] is True
    assert [r["code"] for r in by_slug["locked"]["reasons"]] == ["credentials_missing"]
    assert [r["code"] for r in by_slug["sick"]["reasons"]] == ["service_unhealthy"]
    assert "connection refused" in by_slug["sick"]["reasons"][0]["message"]
    one = await client.post(
        "/jobs/preflight",
        json={
            "input_file_ids": [files[0]["id"]],
            "build": "hg38",
            "targets": [{"service": "michigan"}, {"service": "ghost"}],
        },
        headers=alice.headers,
    )
    targets = one.json()["targets"]
    assert [r["code"] for r in targets[0]["reasons"]] == ["build_unsupported"]
    assert targets[1]["reasons"][0]["code"] == "service_not_found"
    assert one.json()["file_reasons"][0]["code"] == "build_mismatch"
    assert await count(db) == 0


async def test_stats_own_global_and_internal(client, db, alice, bob, admin, token_issuer):
    from fedimpute_shared.testing.tokens import bearer

    db.add_all([job_row(owner_id=alice.id), job_row(owner_id=bob.id, status=JobStatus.RUNNING)])
    await db.commit()
    own = (await client.get("/jobs/stats", headers=alice.headers)).json()
    assert own["by_status"] == {"pending": 1}
    assert (
        await client.get("/jobs/stats", params={"scope": "global"}, headers=alice.headers)
    ).status_code == 403
    everyone = (
        await client.get("/jobs/stats", params={"scope": "global"}, headers=admin.headers)
    ).json()
    assert everyone["by_status"] == {"pending": 1, "running": 1}
    assert everyone["per_service"]["michigan"]["active"] == 2
    monitoring = bearer(token_issuer.service_token("monitoring", "job-processor"))
    internal = await client.get(
        "/internal/jobs/stats", params={"owner_id": str(bob.id)}, headers=monitoring
    )
    assert internal.status_code == 200
    assert internal.json()["by_status"] == {"running": 1}
    recent = (
        await client.get("/internal/jobs/recent", params={"limit": 1}, headers=monitoring)
    ).json()
    assert len(recent) == 1
    assert set(recent[0]) == {
        "id",
        "name",
        "status",
        "service_slug",
        "owner_id",
        "created_at",
        "updated_at",
    }
    assert (await client.get("/internal/jobs/stats", headers=alice.headers)).status_code == 401
    other = bearer(token_issuer.service_token("notification", "job-processor"))
    assert (await client.get("/internal/jobs/stats", headers=other)).status_code == 403


# ---------------------------------------------------------------- found by fuzzing (issue 10)


async def test_a_service_reference_with_a_slash_stays_one_path_segment(client, db, world, alice):
    """'michigan/health' used to call the registry's GET /internal/services/michigan/health
    (another route), and a reference such as 'j/' a path the registry does not serve: a 5xx."""
    service, files = await ready(world, alice)
    body = job_body(service, files) | {"service": f"{service['slug']}/health"}
    response = await client.post("/jobs", json=body, headers=alice.headers)
    assert response.status_code < 500, response.text
    assert response.status_code in (404, 422)
    paths = [call.request.url.raw_path.decode() for call in world.mock.calls]
    assert f"/internal/services/{service['slug']}%2Fhealth" in paths
    assert f"/internal/services/{service['slug']}/health" not in paths
    assert await count(db) == 0


async def test_stats_count_the_last_day_per_status_and_service(client, db, alice):
    """One grouped query: the last day's finished, failed and submitted jobs, per service
    too; older ones count in ``by_status`` only."""
    now = utcnow()
    recent, old = now - timedelta(hours=1), now - timedelta(hours=30)

    def mine(**values):
        return job_row(owner_id=alice.id, **values)

    rows = [
        mine(status=JobStatus.COMPLETED, finished_at=recent, submitted_at=recent),
        mine(status=JobStatus.COMPLETED, finished_at=old, submitted_at=old),
        mine(status=JobStatus.FAILED, finished_at=recent, submitted_at=old),
        mine(status=JobStatus.FAILED, finished_at=old, service_slug="wes"),
        mine(status=JobStatus.FAILED, finished_at=recent, service_slug="wes"),
        mine(status=JobStatus.CANCELLED, finished_at=recent),
        mine(status=JobStatus.QUEUED, submitted_at=recent, service_slug="wes"),
        mine(status=JobStatus.RUNNING, submitted_at=recent),
    ]
    db.add_all(rows)
    await db.commit()
    stats = (await client.get("/jobs/stats", headers=alice.headers)).json()
    assert stats["by_status"] == {
        "completed": 2,
        "failed": 3,
        "cancelled": 1,
        "queued": 1,
        "running": 1,
    }
    assert stats["last_24h"] == {"completed": 1, "failed": 2, "cancelled": 1, "submitted": 3}
    assert stats["success_rate_24h"] == 1 / 3
    assert stats["per_service"] == {
        "michigan": {"active": 1, "queued": 0, "failed_24h": 1},
        "wes": {"active": 1, "queued": 1, "failed_24h": 1},
    }
