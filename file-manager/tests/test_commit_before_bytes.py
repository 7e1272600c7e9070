"""Issue 10 item 13: the database decides first, bytes follow.

Deleting a file commits the deletion before its bytes are removed (a failed commit must not lose
the bytes of a file that still exists); tus completion commits before the partial upload is
renamed into place; and the reaper sweeps what a crash between the two leaves: partial uploads
no live upload owns, objects no live file owns, and a completed upload whose rename never ran."""

import os
import time
import uuid

from sqlalchemy import select

from file_manager.models import FileStatus, StoredFile
from file_manager.storage import LocalStorage

from .conftest import good_vcf, stored_objects, upload_raw, wait_validated
from .test_tus import create, patch


async def test_delete_commits_before_the_bytes_go(client, app, alice, db, monkeypatch):
    meta = (await upload_raw(client, alice, good_vcf())).json()
    await wait_validated(app)
    file_id = uuid.UUID(meta["id"])
    seen = []
    original = LocalStorage.delete

    async def spying_delete(self, key):
        db.expire_all()
        row = await db.get(StoredFile, file_id)
        seen.append(row.deleted_at is not None)
        await original(self, key)

    monkeypatch.setattr(LocalStorage, "delete", spying_delete)
    assert (await client.delete(f"/files/{file_id}", headers=alice)).status_code == 204
    assert seen
    assert all(seen), "bytes were removed before the deletion was committed"


async def test_tus_completion_commits_before_the_rename(make_app, alice, db, monkeypatch):
    """The rename fails (a crash right after the commit): the upload is still complete in the
    database, and the reaper finishes the rename."""
    from fedimpute_shared.testing.client import app_client

    data = good_vcf()
    app = make_app()
    async with app_client(app) as client:
        location = (await create(client, alice, len(data))).headers["location"]
        file_id = uuid.UUID(location.rsplit("/", 1)[1])
        original = LocalStorage.commit_partial

        def crash(self, key, final_key):
            raise OSError("crashed before the rename")

        monkeypatch.setattr(LocalStorage, "commit_partial", crash)
        done = await patch(client, alice, location, 0, data)
        assert done.status_code >= 500
        db.expire_all()
        row = await db.get(StoredFile, file_id)
        assert row.status is not FileStatus.UPLOADING  # committed before the rename
        assert row.sha256 is not None
        monkeypatch.setattr(LocalStorage, "commit_partial", original)
        storage: LocalStorage = app.state.storage
        _age(storage.partial_path(row.storage_key))
        result = await app.state.reaper.run_once()
        assert result.repaired == 1
        download = await client.get(f"/files/{file_id}/content", headers=alice)
        assert download.status_code == 200
        assert download.content == data


def _age(path, seconds=7200):
    old = time.time() - seconds
    os.utime(path, (old, old))


async def test_the_reaper_sweeps_orphans_and_finishes_an_interrupted_rename(
    make_app, alice, db, storage_dir
):
    from fedimpute_shared.testing.client import app_client

    app = make_app()
    async with app_client(app) as client:
        storage: LocalStorage = app.state.storage
        # 1. a completed tus upload whose rename never ran (crash after the commit)
        data = good_vcf()
        location = (await create(client, alice, len(data))).headers["location"]
        assert (await patch(client, alice, location, 0, data)).status_code == 204
        file_id = uuid.UUID(location.rsplit("/", 1)[1])
        await wait_validated(app)
        db.expire_all()
        row = await db.get(StoredFile, file_id)
        key = row.storage_key
        os.replace(storage.object_path(key), storage.partial_path(key))  # undo the rename
        _age(storage.partial_path(key))
        # 2. a partial upload no row owns, and an object no live file owns
        stray_partial = storage.partial_path(storage.new_key())
        stray_partial.write_bytes(b"left behind")
        _age(stray_partial)
        stray_key = storage.new_key()
        stray_object = storage.object_path(stray_key)
        stray_object.parent.mkdir(parents=True, exist_ok=True)
        stray_object.write_bytes(b"deleted file whose bytes stayed")
        _age(stray_object)
        # 3. a fresh partial upload in progress, and a live file's bytes: both stay
        live = (await upload_raw(client, alice, good_vcf(), filename="keep.vcf.gz")).json()
        await wait_validated(app)
        in_progress = await create(client, alice, 1000)
        assert in_progress.status_code == 201

        result = await app.state.reaper.run_once()

        assert result.orphans == 2
        assert result.repaired == 1
        assert storage.object_path(key).exists()
        assert not storage.partial_path(key).exists()
        assert not stray_partial.exists()
        assert not stray_object.exists()
        download = await client.get(f"/files/{file_id}/content", headers=alice)
        assert download.status_code == 200
        assert download.content == data
        kept = await client.get(f"/files/{live['id']}/content", headers=alice)
        assert kept.status_code == 200
    rows = (await db.scalars(select(StoredFile.status))).all()
    assert FileStatus.UPLOADING in rows
    assert len(stored_objects(storage_dir)) >= 3
