"""tus 1.0: discovery, creation, PATCH/HEAD, checksum, termination, expiry; and a real client
(tuspy) against the service over HTTP, interrupted and resumed."""

import asyncio
import base64
import gc
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import update
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from fedimpute_shared.db import utcnow
from file_manager.models import StoredFile

from .conftest import assert_nothing_left, good_vcf, stored_objects, wait_validated

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(client, auth, length, **meta):
    meta.setdefault("filename", "study.vcf.gz")
    return await client.post(
        "/files/uploads",
        headers={**auth, **TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(**meta)},
    )


async def patch(client, auth, location, offset, data, **headers):
    return await client.patch(
        location,
        content=data,
        headers={
            **auth,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


async def test_options_discovery(client):
    response = await client.options("/files/uploads")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "termination",
        "checksum",
        "expiration",
    }
    assert "sha256" in response.headers["tus-checksum-algorithm"]
    assert int(response.headers["tus-max-size"]) > 0


async def test_upload_in_chunks_with_head_in_between(client, app, alice):
    data = good_vcf(variants=600)
    created = await create(
        client, alice, len(data), build="hg38", sha256=hashlib.sha256(data).hexdigest()
    )
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0"
    location = created.headers["location"]
    assert location.startswith("/files/uploads/")
    assert "upload-expires" in created.headers
    half = len(data) // 2
    first = await patch(client, alice, location, 0, data[:half])
    assert first.status_code == 204
    assert first.headers["upload-offset"] == str(half)
    head = await client.head(location, headers={**alice, **TUS})
    assert head.headers["upload-offset"] == str(half)
    assert head.headers["upload-length"] == str(len(data))
    assert head.headers["cache-control"] == "no-store"
    second = await patch(client, alice, location, half, data[half:])
    assert second.status_code == 204
    file_id = location.rsplit("/", 1)[1]
    await wait_validated(app)
    file = (await client.get(f"/files/{file_id}", headers=alice)).json()
    assert file["status"] == "valid"
    assert file["declared_build"] == "hg38"
    assert file["checksums"]["sha256"] == hashlib.sha256(data).hexdigest()
    content = await client.get(f"/files/{file_id}/content", headers=alice)
    assert content.content == data


async def test_offset_mismatch_is_409_and_changes_nothing(client, alice):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    await patch(client, alice, location, 0, data[:100])
    response = await patch(client, alice, location, 50, data[50:200])
    assert response.status_code == 409
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["upload-offset"] == "100"
    head = await client.head(location, headers={**alice, **TUS})
    assert head.headers["upload-offset"] == "100"


async def test_chunk_checksum_mismatch_is_460_and_discards_the_chunk(client, alice):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    wrong = base64.b64encode(hashlib.sha1(b"nope").digest()).decode()  # noqa: S324 (checksums, not security)
    response = await patch(
        client, alice, location, 0, data[:500], **{"Upload-Checksum": f"sha1 {wrong}"}
    )
    assert response.status_code == 460
    head = await client.head(location, headers={**alice, **TUS})
    assert head.headers["upload-offset"] == "0"
    right = base64.b64encode(hashlib.sha1(data[:500]).digest()).decode()  # noqa: S324 (checksums, not security)
    ok = await patch(client, alice, location, 0, data[:500], **{"Upload-Checksum": f"sha1 {right}"})
    assert ok.status_code == 204
    assert ok.headers["upload-offset"] == "500"


async def test_wrong_whole_file_checksum_refuses_and_keeps_nothing(client, alice, db, storage_dir):
    data = good_vcf()
    location = (await create(client, alice, len(data), sha256="0" * 64)).headers["location"]
    response = await patch(client, alice, location, 0, data)
    assert response.status_code == 460
    await assert_nothing_left(db, storage_dir)


async def test_not_a_vcf_is_refused_at_completion(client, alice, db, storage_dir):
    data = b"not a vcf at all\n" * 100
    location = (await create(client, alice, len(data))).headers["location"]
    response = await patch(client, alice, location, 0, data)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("The provided VCF file is malformed.")
    await assert_nothing_left(db, storage_dir)


async def test_termination_removes_everything(client, alice, db, storage_dir):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    await patch(client, alice, location, 0, data[:1000])
    response = await client.delete(location, headers={**alice, **TUS})
    assert response.status_code == 204
    await assert_nothing_left(db, storage_dir)
    assert (await client.head(location, headers={**alice, **TUS})).status_code == 404


async def test_protocol_errors(client, alice, bob):
    data = good_vcf()
    no_version = await client.post("/files/uploads", headers={**alice, "Upload-Length": "10"})
    assert no_version.status_code == 412
    assert no_version.headers["tus-version"] == "1.0.0"
    no_length = await client.post("/files/uploads", headers={**alice, **TUS})
    assert no_length.status_code == 400
    location = (await create(client, alice, len(data))).headers["location"]
    wrong_type = await client.patch(
        location, content=b"x", headers={**alice, **TUS, "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415
    too_long = await patch(client, alice, location, 0, data + b"extra")
    assert too_long.status_code == 413
    assert (await patch(client, bob, location, 0, data)).status_code == 404
    assert (await client.head(location, headers={**bob, **TUS})).status_code == 404


async def test_creation_checks_limits_and_names(make_app, alice, db, storage_dir):
    from fedimpute_shared.testing.client import app_client

    async with app_client(make_app(max_file_size_bytes=1000, user_quota_bytes=1500)) as client:
        assert (await create(client, alice, 2000)).status_code == 413
        assert (await create(client, alice, 900)).status_code == 201
        over = await create(client, alice, 900)
        assert over.status_code == 507
        assert over.json()["used_bytes"] == 900
        bad = await create(client, alice, 10, filename="../x.vcf.gz")
        assert bad.status_code == 422


async def test_location_honours_the_gateway_prefix(client, alice):
    response = await client.post(
        "/files/uploads",
        headers={
            **alice,
            **TUS,
            "Upload-Length": "10",
            "X-Forwarded-Prefix": "/api",
            "Upload-Metadata": metadata(filename="a.bed"),
        },
    )
    assert response.headers["location"].startswith("/api/files/uploads/")


async def test_abandoned_uploads_are_reaped(client, app, alice, db, storage_dir):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    await patch(client, alice, location, 0, data[:100])
    await db.execute(update(StoredFile).values(upload_expires_at=utcnow() - timedelta(seconds=1)))
    await db.commit()
    assert (await patch(client, alice, location, 100, data[100:])).status_code == 410
    run = await app.state.reaper.run_once()
    assert run.abandoned == 1
    await assert_nothing_left(db, storage_dir)


# ------------------------------------------------------------------ a real tus client

# tuspy (requests) leaves the sockets of refused requests to the garbage collector: collect them
# inside the test so their ResourceWarning cannot surface in a later, unrelated test.
TUSPY_WARNINGS = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


def _tus_upload(url, token, path, chunk_size, stop_after=None, metadata=None):
    client = tus_client.TusClient(
        url + "/files/uploads", headers={"Authorization": f"Bearer {token}"}
    )
    with open(path, "rb") as stream:  # tuspy leaves a file it opened itself unclosed
        uploader = client.uploader(
            file_stream=stream,
            chunk_size=chunk_size,
            metadata=metadata or {"filename": path.name},
            upload_checksum=True,
        )
        if stop_after is None:
            uploader.upload()
        else:
            uploader.upload(stop_at=stop_after)
    return uploader


@TUSPY_WARNINGS
async def test_tuspy_uploads_interrupted_and_resumed(
    live_server, token_issuer, user_id, tmp_path, db
):
    token = token_issuer.access_token(user_id)
    data = good_vcf(samples=40, variants=3000)
    path = tmp_path / "resume_me.vcf.gz"
    path.write_bytes(data)
    half = (len(data) // 2 // 4096) * 4096
    first = await asyncio.to_thread(_tus_upload, live_server.url, token, path, 4096, half)
    assert first.offset == half

    # a new client process resumes from the URL, asking the server for the offset
    def resume():
        client = tus_client.TusClient(live_server.url, headers={"Authorization": f"Bearer {token}"})
        with open(path, "rb") as stream:
            uploader = client.uploader(
                file_stream=stream, url=first.url, chunk_size=8192, upload_checksum=True
            )
            assert uploader.offset == half
            uploader.upload()
        return uploader

    second = await asyncio.to_thread(resume)
    assert second.offset == len(data)
    file_id = first.url.rsplit("/", 1)[1]
    auth = {"Authorization": f"Bearer {token}"}
    import httpx

    async with httpx.AsyncClient(base_url=live_server.url, headers=auth) as http:
        for _ in range(100):
            file = (await http.get(f"/files/{file_id}")).json()
            if file["status"] != "validating":
                break
            await asyncio.sleep(0.1)
        assert file["status"] == "valid", file
        assert file["filename"] == "resume_me.vcf.gz"
        assert (await http.get(f"/files/{file_id}/content")).content == data
    gc.collect()


@TUSPY_WARNINGS
async def test_tuspy_sees_refusals(live_server, token_issuer, tmp_path):
    token = token_issuer.access_token()
    path = tmp_path / "bad.vcf.gz"
    path.write_bytes(b"plain text, not bgzip\n" * 50)
    with pytest.raises(TusCommunicationError):
        await asyncio.to_thread(_tus_upload, live_server.url, token, path, 4096)
    gc.collect()


async def test_deleting_an_upload_in_progress_through_the_files_api(client, alice, storage_dir):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    await patch(client, alice, location, 0, data[:1000])
    file_id = location.rsplit("/", 1)[1]
    assert (await client.get(f"/files/{file_id}", headers=alice)).json()["status"] == "uploading"
    assert (await client.delete(f"/files/{file_id}", headers=alice)).status_code == 204
    assert stored_objects(storage_dir) == []
    assert (await patch(client, alice, location, 1000, data[1000:])).status_code == 404


async def test_resuming_on_another_replica_still_gives_the_right_checksums(make_app, alice, db):
    """The running digests live in the process that saw the bytes; another replica (or a
    restart) finishing the upload hashes the stored bytes instead."""
    from fedimpute_shared.testing.client import app_client

    data = good_vcf(variants=800)
    half = len(data) // 2
    async with app_client(make_app()) as first:
        location = (await create(first, alice, len(data))).headers["location"]
        assert (await patch(first, alice, location, 0, data[:half])).status_code == 204
    async with app_client(make_app()) as second:
        assert (await patch(second, alice, location, half, data[half:])).status_code == 204
        file = (await second.get(f"/files/{location.rsplit('/', 1)[1]}", headers=alice)).json()
    assert file["checksums"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["checksums"]["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324


async def test_a_patch_cut_off_keeps_the_bytes_that_arrived(app, alice, db):
    """tus core: without Upload-Checksum, what reached the server before a disconnect stays,
    and HEAD says so; the client resumes from there. (``db``: its rows are emptied after.)"""
    import httpx
    from asgi_lifespan import LifespanManager

    data = good_vcf(variants=800)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            location = (await create(client, alice, len(data))).headers["location"]
            pieces = [data[:3000], data[3000:5000]]

            async def receive():
                if pieces:
                    return {"type": "http.request", "body": pieces.pop(0), "more_body": True}
                await asyncio.sleep(0.05)
                return {"type": "http.disconnect"}

            sent = []

            async def send(message):
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "PATCH",
                "scheme": "http",
                "path": location,
                "raw_path": location.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"host", b"t"),
                    (b"authorization", alice["Authorization"].encode()),
                    (b"tus-resumable", b"1.0.0"),
                    (b"upload-offset", b"0"),
                    (b"content-type", b"application/offset+octet-stream"),
                    (b"content-length", str(len(data)).encode()),
                ],
                "client": ("127.0.0.1", 1),
                "server": ("t", 80),
                "state": dict(manager._state),
            }
            await manager.app(scope, receive, send)
            head = await client.head(location, headers={**alice, **TUS})
            assert head.headers["upload-offset"] == "5000"
            rest = await patch(client, alice, location, 5000, data[5000:])
            assert rest.status_code == 204
            file_id = location.rsplit("/", 1)[1]
            file = (await client.get(f"/files/{file_id}", headers=alice)).json()
            assert file["checksums"]["sha256"] == hashlib.sha256(data).hexdigest()
