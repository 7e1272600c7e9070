"""Retention (warnings, expiry, replica safety) and job-processor's internal endpoints."""

import asyncio
import hashlib
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from fedimpute_shared.config import validated_copy
from fedimpute_shared.db import utcnow
from file_manager.models import FileAccessLog, OutboxEvent, StoredFile
from file_manager.retention.reaper import Reaper

from .conftest import bearer, good_vcf, stored_objects, upload_raw, wait_validated


async def _age(db, **values):
    await db.execute(update(StoredFile).values(**values))
    await db.commit()


async def test_expiry_is_set_per_kind(client, alice, job_processor, user_id, settings):
    mine = (await upload_raw(client, alice, b"x", filename="a.bed")).json()
    result = (
        await client.post(
            "/internal/files",
            params={"user_id": str(user_id), "job_id": str(uuid.uuid4()), "filename": "chr_20.zip"},
            content=b"zip",
            headers=job_processor,
        )
    ).json()
    from datetime import datetime

    def days(f):
        return (
            datetime.fromisoformat(f["expires_at"]) - datetime.fromisoformat(f["created_at"])
        ).days

    assert days(mine) == int(settings.input_retention_days) - 1 or days(mine) == int(
        settings.input_retention_days
    )
    assert days(result) in (
        int(settings.result_retention_days) - 1,
        int(settings.result_retention_days),
    )


async def test_warning_48h_before_expiry_once(client, app, alice, db):
    meta = (await upload_raw(client, alice, b"data", filename="a.bed")).json()
    await _age(db, expires_at=utcnow() + timedelta(hours=47))
    first = await app.state.reaper.run_once()
    second = await app.state.reaper.run_once()
    assert (first.warned, second.warned) == (1, 0)
    events = (
        await db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "file.expiring"))
    ).all()
    assert len(events) == 1
    assert events[0].payload["file_id"] == meta["id"]
    assert events[0].payload["filename"] == "a.bed"


async def test_expired_files_lose_their_bytes_and_rows_are_marked(
    client, app, alice, db, storage_dir
):
    meta = (await upload_raw(client, alice, good_vcf(), filename="old.vcf.gz")).json()
    await wait_validated(app)
    assert len(stored_objects(storage_dir)) == 2  # the file and its tabix index
    await _age(db, expires_at=utcnow() - timedelta(minutes=1))
    run = await app.state.reaper.run_once()
    assert run.expired == 1
    assert stored_objects(storage_dir) == []
    db.expire_all()
    row = await db.get(StoredFile, uuid.UUID(meta["id"]))
    assert row.deleted_at is not None
    assert row.deletion_reason == "expired"
    assert (await client.get(f"/files/{meta['id']}", headers=alice)).status_code == 404
    actions = (await db.scalars(select(FileAccessLog.action))).all()
    assert "expire" in actions


async def test_reapers_on_several_replicas_never_double_work(client, app, alice, db, settings):
    for i in range(30):
        await upload_raw(client, alice, b"x" * 10, filename=f"f{i}.bed")
    await _age(db, expires_at=utcnow() + timedelta(hours=1))
    storage = app.state.storage
    maker = app.state.reaper.sessionmaker
    small = validated_copy(settings, reaper_batch_size=3)
    replicas = [Reaper(maker, storage, small) for _ in range(4)]
    runs = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sum(r.warned for r in runs) == 30
    events = (
        await db.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "file.expiring"))
    ).all()
    assert len(events) == 30


async def test_job_processor_reads_a_users_input(client, app, alice, user_id, job_processor):
    data = good_vcf()
    meta = (await upload_raw(client, alice, data)).json()
    await wait_validated(app)
    params = {"user_id": str(user_id)}
    info = await client.get(f"/internal/files/{meta['id']}", params=params, headers=job_processor)
    assert info.status_code == 200
    assert info.json()["status"] == "valid"
    content = await client.get(
        f"/internal/files/{meta['id']}/content", params=params, headers=job_processor
    )
    assert content.content == data
    # Counted like any download (the one serve_content path), and logged for the user.
    assert 'file_downloads_total{via="service"} 1.0' in (await client.get("/metrics")).text
    index = await client.get(
        f"/internal/files/{meta['id']}/index", params=params, headers=job_processor
    )
    assert index.status_code == 200
    other_user = {"user_id": str(uuid.uuid4())}
    denied = await client.get(
        f"/internal/files/{meta['id']}", params=other_user, headers=job_processor
    )
    assert denied.status_code == 404


async def test_job_processor_gets_a_signed_link_for_a_remote_node(
    client, app, alice, user_id, job_processor
):
    data = good_vcf()
    meta = (await upload_raw(client, alice, data)).json()
    await wait_validated(app)
    params = {"user_id": str(user_id)}
    link = await client.post(
        f"/internal/files/{meta['id']}/links",
        params=params,
        json={"expires_in_seconds": 3600},
        headers=job_processor,
    )
    assert link.status_code == 201, link.text
    token = link.json()["token"]
    fetched = await client.get(f"/files/download/{token}")  # no credentials: the node's view
    assert fetched.content == data
    other = {"user_id": str(uuid.uuid4())}
    denied = await client.post(
        f"/internal/files/{meta['id']}/links", params=other, json={}, headers=job_processor
    )
    assert denied.status_code == 404
    assert (
        await client.post(
            f"/internal/files/{meta['id']}/links", params=params, json={}, headers=alice
        )
    ).status_code == 401


async def test_job_processor_stores_a_result_for_the_user(client, alice, user_id, job_processor):
    job_id = uuid.uuid4()
    data = b"PK\x03\x04 zipped imputed chromosome"
    response = await client.post(
        "/internal/files",
        params={
            "user_id": str(user_id),
            "job_id": str(job_id),
            "filename": "chr_20.zip",
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        content=data,
        headers=job_processor,
    )
    assert response.status_code == 201, response.text
    listed = (
        await client.get("/files", params={"kind": "result", "job_id": str(job_id)}, headers=alice)
    ).json()
    assert [f["filename"] for f in listed["items"]] == ["chr_20.zip"]
    assert listed["items"][0]["status"] == "not_validated"
    download = await client.get(f"/files/{listed['items'][0]['id']}/content", headers=alice)
    assert download.content == data


async def test_internal_endpoints_refuse_users_and_other_services(client, alice, token_issuer):
    fid = uuid.uuid4()
    params = {"user_id": str(uuid.uuid4())}
    assert (
        await client.get(f"/internal/files/{fid}", params=params, headers=alice)
    ).status_code == 401
    monitoring = bearer(token_issuer.service_token("monitoring", "file-manager"))
    response = await client.get(f"/internal/files/{fid}", params=params, headers=monitoring)
    assert response.status_code == 403
    wrong_audience = bearer(token_issuer.service_token("job-processor", "user-service"))
    assert (
        await client.get(f"/internal/files/{fid}", params=params, headers=wrong_audience)
    ).status_code == 401
