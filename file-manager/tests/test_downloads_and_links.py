"""Downloads (Range, ETag, Content-Disposition), signed links, listing, deletion, ownership."""

import hashlib
import uuid

import pytest
from sqlalchemy import select

from file_manager.models import AccessAction, FileAccessLog

from .conftest import bearer, good_vcf, stored_objects, upload_raw, wait_validated


@pytest.fixture
async def stored(client, app, alice):
    data = good_vcf(samples=20, variants=400)
    response = await upload_raw(client, alice, data, filename="étude chr20.vcf.gz")
    assert response.status_code == 201
    await wait_validated(app)
    return response.json(), data


async def test_download_is_byte_identical_with_etag_and_safe_disposition(client, alice, stored):
    meta, data = stored
    response = await client.get(f"/files/{meta['id']}/content", headers=alice)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="_tude chr20.vcf.gz"')
    assert "filename*=UTF-8''%C3%A9tude%20chr20.vcf.gz" in disposition


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None)],
)
async def test_range_requests_answer_206(client, alice, stored, header, start, end):
    meta, data = stored
    response = await client.get(f"/files/{meta['id']}/content", headers={**alice, "Range": header})
    assert response.status_code == 206
    expected = data[start:] if end is None else data[start : end + 1]
    assert response.content == expected
    first = start if start >= 0 else len(data) + start
    assert (
        response.headers["content-range"]
        == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    )


async def test_unsatisfiable_range_is_416(client, alice, stored):
    meta, data = stored
    response = await client.get(
        f"/files/{meta['id']}/content", headers={**alice, "Range": f"bytes={len(data)}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"


async def test_if_none_match_is_304(client, alice, stored):
    meta, data = stored
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    response = await client.get(
        f"/files/{meta['id']}/content", headers={**alice, "If-None-Match": etag}
    )
    assert response.status_code == 304


async def test_index_download(client, alice, stored):
    meta, _ = stored
    response = await client.get(f"/files/{meta['id']}/index", headers=alice)
    assert response.status_code == 200
    assert response.content[:2] == b"\x1f\x8b"  # a tabix index is BGZF-compressed


async def test_another_users_file_is_404_everywhere(client, bob, stored):
    meta, _ = stored
    fid = meta["id"]
    for method, path in [
        ("GET", f"/files/{fid}"),
        ("GET", f"/files/{fid}/content"),
        ("GET", f"/files/{fid}/index"),
        ("DELETE", f"/files/{fid}"),
        ("POST", f"/files/{fid}/links"),
        ("GET", f"/files/{fid}/links"),
    ]:
        response = await client.request(
            method, path, headers=bob, json={} if method == "POST" else None
        )
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    unknown = await client.get(f"/files/{uuid.uuid4()}", headers=bob)
    assert unknown.status_code == 404
    assert unknown.json()["title"] == response.json()["title"]


async def test_admin_sees_any_file(client, admin, stored):
    meta, _ = stored
    assert (await client.get(f"/files/{meta['id']}", headers=admin)).status_code == 200


async def test_an_admins_narrowed_api_token_is_not_an_admin(client, token_issuer, stored):
    """Issue 10 item 3: exchanging an API token keeps the admin role but narrows the scopes; a
    files:read or files:write script token of an admin sees and deletes its owner's files only."""
    meta, _ = stored
    fid = meta["id"]
    narrowed = bearer(
        token_issuer.access_token(roles=["admin"], scopes=["files:read", "files:write"])
    )
    for method, path in [
        ("GET", f"/files/{fid}"),
        ("GET", f"/files/{fid}/content"),
        ("DELETE", f"/files/{fid}"),
        ("POST", f"/files/{fid}/links"),
    ]:
        response = await client.request(
            method, path, headers=narrowed, json={} if method == "POST" else None
        )
        assert response.status_code == 404, (method, path, response.text)
    listed = await client.get(f"/files?owner_id={meta['owner_id']}", headers=narrowed)
    assert listed.status_code == 403


async def test_no_token_is_401(client, stored):
    meta, _ = stored
    assert (await client.get(f"/files/{meta['id']}")).status_code == 401


async def test_signed_link_downloads_without_token_then_revocation(client, alice, stored):
    meta, data = stored
    created = await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)
    assert created.status_code == 201
    link = created.json()
    assert link["url"].startswith("/files/download/")
    anonymous = await client.get(link["url"])
    assert anonymous.status_code == 200
    assert anonymous.content == data
    ranged = await client.get(link["url"], headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    revoked = await client.delete(f"/files/{meta['id']}/links/{link['id']}", headers=alice)
    assert revoked.status_code == 204
    assert (await client.get(link["url"])).status_code == 410


async def test_single_use_link_works_once(client, alice, stored):
    meta, _ = stored
    link = (
        await client.post(f"/files/{meta['id']}/links", json={"single_use": True}, headers=alice)
    ).json()
    assert (await client.get(link["url"])).status_code == 200
    assert (await client.get(link["url"])).status_code == 410


async def test_tampered_or_expired_link_is_refused(client, alice, stored, make_app):
    meta, _ = stored
    link = (await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)).json()
    token = link["token"]
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (await client.get(f"/files/download/{forged}")).status_code == 404
    assert (await client.get("/files/download/not-a-token")).status_code == 404


async def test_listing_filters_and_paginates(client, app, alice, bob):
    for i in range(3):
        await upload_raw(client, alice, b"plink-ish bytes %d" % i, filename=f"part{i}.bed")
    await upload_raw(client, alice, good_vcf(), filename="a.vcf.gz")
    await upload_raw(client, bob, b"bob's", filename="bob.bed")
    await wait_validated(app)
    page = (await client.get("/files", params={"limit": 2}, headers=alice)).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = (
        await client.get(
            "/files", params={"limit": 2, "cursor": page["next_cursor"]}, headers=alice
        )
    ).json()
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    names = {f["filename"] for f in page["items"] + rest["items"]}
    assert names == {"part0.bed", "part1.bed", "part2.bed", "a.vcf.gz"}
    valid = (await client.get("/files", params={"status": "valid"}, headers=alice)).json()
    assert [f["filename"] for f in valid["items"]] == ["a.vcf.gz"]
    plink = (await client.get("/files", params={"status": "not_validated"}, headers=alice)).json()
    assert {f["format"] for f in plink["items"]} == {"plink"}
    results = (await client.get("/files", params={"kind": "result"}, headers=alice)).json()
    assert results["items"] == []


async def test_delete_removes_bytes_and_hides_the_file(client, alice, stored, storage_dir, db):
    meta, _ = stored
    assert stored_objects(storage_dir)
    response = await client.delete(f"/files/{meta['id']}", headers=alice)
    assert response.status_code == 204
    assert stored_objects(storage_dir) == []
    assert (await client.get(f"/files/{meta['id']}", headers=alice)).status_code == 404
    actions = (await db.scalars(select(FileAccessLog.action))).all()
    assert AccessAction.UPLOAD in actions
    assert AccessAction.DELETE in actions


async def test_every_access_is_logged(client, alice, stored, db):
    meta, _ = stored
    await client.get(f"/files/{meta['id']}/content", headers=alice)
    link = (await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)).json()
    await client.get(link["url"])
    rows = (await db.scalars(select(FileAccessLog).order_by(FileAccessLog.at))).all()
    assert [r.action for r in rows] == [
        AccessAction.UPLOAD,
        AccessAction.DOWNLOAD,
        AccessAction.LINK_CREATED,
        AccessAction.LINK_DOWNLOAD,
    ]
    assert rows[1].actor.startswith("user:")
    assert rows[3].actor == f"link:{link['id']}"


async def test_usage_reports_bytes_in_use(client, alice, stored):
    _, data = stored
    usage = (await client.get("/files/usage", headers=alice)).json()
    assert usage["used_bytes"] == len(data)


async def test_viewer_cannot_upload(client, token_issuer):
    viewer = bearer(token_issuer.access_token(roles=["viewer"]))
    response = await upload_raw(client, viewer, good_vcf())
    assert response.status_code == 403


async def test_expired_link_is_410(client, alice, stored, db):
    from datetime import timedelta

    from sqlalchemy import update

    from fedimpute_shared.db import utcnow
    from file_manager.models import DownloadLink

    meta, _ = stored
    link = (await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)).json()
    await db.execute(update(DownloadLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    await db.commit()
    response = await client.get(link["url"])
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]


async def test_link_to_a_deleted_file_is_410(client, alice, stored):
    meta, _ = stored
    link = (await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)).json()
    await client.delete(f"/files/{meta['id']}", headers=alice)
    assert (await client.get(link["url"])).status_code == 410
