"""Job templates: saved, checked, private or shared, submitted with new files through every job
check, their use counted; another user's private template is a 404."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from job_processor.models import Job, JobTemplate


def template_body(service, **overrides):
    body = {
        "name": "H3Africa chr20",
        "service": service["slug"],
        "panel": "1000g-phase3",
        "build": "hg19",
        "phasing": "eagle",
        "population": "AFR",
        "tags": ["pilot"],
    }
    return body | overrides


async def saved(client, world, user, **overrides):
    service = world.add_service()
    world.store_credentials(user.id, service)
    response = await client.post(
        "/job-templates", json=template_body(service, **overrides), headers=user.headers
    )
    assert response.status_code == 201, response.text
    return service, response.json()


async def count(db, model):
    return await db.scalar(select(func.count()).select_from(model))


async def test_a_template_is_saved_checked_and_read_back(client, db, world, alice):
    _, template = await saved(client, world, alice)
    assert template["shared"] is False
    assert template["usage_count"] == 0
    got = await client.get(f"/job-templates/{template['id']}", headers=alice.headers)
    assert got.status_code == 200
    assert got.json()["panel"] == "1000g-phase3"


async def test_a_template_on_a_panel_the_service_lacks_is_refused(client, db, world, alice):
    service = world.add_service()
    response = await client.post(
        "/job-templates", json=template_body(service, panel="topmed-r3"), headers=alice.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["code"] == "panel_not_offered"
    assert await count(db, JobTemplate) == 0


async def test_an_unknown_service_and_a_bad_option_are_refused(client, db, world, alice):
    response = await client.post(
        "/job-templates",
        json=template_body({"slug": "nowhere"}),
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "service_not_found"
    service = world.add_service()
    response = await client.post(
        "/job-templates", json=template_body(service, phasing="shapeit"), headers=alice.headers
    )
    assert response.status_code == 422
    assert await count(db, JobTemplate) == 0


async def test_the_same_name_twice_is_a_conflict(client, db, world, alice):
    service, _ = await saved(client, world, alice)
    again = await client.post("/job-templates", json=template_body(service), headers=alice.headers)
    assert again.status_code == 409
    assert "already have a template named" in again.json()["detail"]
    assert await count(db, JobTemplate) == 1


async def test_someone_elses_private_template_is_a_404_everywhere(client, db, world, alice, bob):
    _, template = await saved(client, world, alice)
    url = f"/job-templates/{template['id']}"
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    assert (await client.patch(url, json={"name": "x"}, headers=bob.headers)).status_code == 404
    assert (await client.delete(url, headers=bob.headers)).status_code == 404
    bobs = world.add_file(bob.id)
    submit = await client.post(
        f"{url}/submit", json={"input_file_ids": [bobs["id"]]}, headers=bob.headers
    )
    assert submit.status_code == 404
    listing = await client.get("/job-templates", headers=bob.headers)
    assert listing.json()["items"] == []
    assert await count(db, Job) == 0


async def test_a_shared_template_is_read_and_submitted_by_others_but_changed_by_its_owner(
    client, db, world, alice, bob
):
    service, template = await saved(client, world, alice, shared=True)
    url = f"/job-templates/{template['id']}"
    assert (await client.get(url, headers=bob.headers)).status_code == 200
    changed = await client.patch(url, json={"name": "mine now"}, headers=bob.headers)
    assert changed.status_code == 403
    assert (await client.delete(url, headers=bob.headers)).status_code == 403
    world.store_credentials(bob.id, service)
    bobs = world.add_file(bob.id)
    submit = await client.post(
        f"{url}/submit", json={"input_file_ids": [bobs["id"]]}, headers=bob.headers
    )
    assert submit.status_code == 202, submit.text
    assert submit.json()["owner_id"] == str(bob.id)
    shared = await client.get("/job-templates?scope=shared", headers=bob.headers)
    assert [t["id"] for t in shared.json()["items"]] == [template["id"]]
    mine = await client.get("/job-templates?scope=mine", headers=bob.headers)
    assert mine.json()["items"] == []


async def test_submitting_creates_a_job_with_the_templates_options_and_counts_it(
    client, db, world, alice
):
    _, template = await saved(client, world, alice)
    files = [world.add_file(alice.id), world.add_file(alice.id, filename="chr21.vcf.gz")]
    response = await client.post(
        f"/job-templates/{template['id']}/submit",
        json={"input_file_ids": [f["id"] for f in files], "name": "run 1", "tags": ["batch-7"]},
        headers=alice.headers,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["name"] == "run 1"
    assert job["panel_slug"] == "1000g-phase3"
    assert job["population"] == "AFR"
    assert job["tags"] == ["pilot", "batch-7"]
    stored = await db.get(Job, uuid.UUID(job["id"]))
    assert stored.template_id == uuid.UUID(template["id"])
    again = await client.get(f"/job-templates/{template['id']}", headers=alice.headers)
    assert again.json()["usage_count"] == 1
    assert again.json()["last_used_at"] is not None


async def test_submitting_runs_every_job_check_and_a_refusal_is_not_counted(
    client, db, world, alice, bob
):
    _, template = await saved(client, world, alice)
    bobs = world.add_file(bob.id)
    invalid = world.add_file(alice.id, status="invalid")
    response = await client.post(
        f"/job-templates/{template['id']}/submit",
        json={"input_file_ids": [bobs["id"], invalid["id"]]},
        headers=alice.headers,
    )
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert codes == {"file_not_found", "file_invalid"}
    assert await count(db, Job) == 0
    again = await client.get(f"/job-templates/{template['id']}", headers=alice.headers)
    assert again.json()["usage_count"] == 0


async def test_a_replayed_idempotency_key_returns_the_first_job_and_counts_once(
    client, db, world, alice
):
    _, template = await saved(client, world, alice)
    file = world.add_file(alice.id)
    url = f"/job-templates/{template['id']}/submit"
    headers = alice.headers | {"Idempotency-Key": "k-1"}
    first = await client.post(url, json={"input_file_ids": [file["id"]]}, headers=headers)
    second = await client.post(url, json={"input_file_ids": [file["id"]]}, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert await count(db, Job) == 1
    again = await client.get(f"/job-templates/{template['id']}", headers=alice.headers)
    assert again.json()["usage_count"] == 1


async def test_changing_the_target_is_checked_and_deleting_keeps_the_jobs(client, db, world, alice):
    _, template = await saved(client, world, alice)
    url = f"/job-templates/{template['id']}"
    bad = await client.patch(url, json={"panel": "nope"}, headers=alice.headers)
    assert bad.status_code == 422
    ok = await client.patch(
        url,
        json={"shared": True, "tags": ["a", "a"], "name": None, "population": None},
        headers=alice.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "H3Africa chr20"  # null for a required member: unchanged
    assert ok.json()["population"] is None
    assert ok.json()["shared"] is True
    assert ok.json()["tags"] == ["a"]
    file = world.add_file(alice.id)
    submitted = await client.post(
        f"{url}/submit", json={"input_file_ids": [file["id"]]}, headers=alice.headers
    )
    assert submitted.status_code == 202
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert (await client.get(url, headers=alice.headers)).status_code == 404
    job = await db.get(Job, uuid.UUID(submitted.json()["id"]))
    await db.refresh(job)
    assert job.template_id is None
