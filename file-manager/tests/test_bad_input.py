"""Every bad input of issue 4: a clear 4xx problem, and nothing left behind (no row, no bytes)."""

import asyncio
import hashlib
import os

import pytest
from sqlalchemy import select

from file_manager.models import FileStatus, OutboxEvent, StoredFile
from file_manager.testdata import VcfSpec, bgzf_blocks, bgzf_bomb, vcf_bytes

from .conftest import (
    assert_nothing_left,
    file_rows,
    good_vcf,
    stored_objects,
    upload_raw,
    wait_validated,
)

MALFORMED = "The provided VCF file is malformed.\nError: "


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


# ------------------------------------------------------------- refused while uploading

UPLOAD_TIME = {
    "empty file": (b"", "The uploaded file is empty."),
    "plain gzip": (
        vcf_bytes(VcfSpec(), "gzip"),
        MALFORMED + "the file is compressed with plain gzip",
    ),
    "truncated BGZF": (
        good_vcf()[:-100],
        MALFORMED + "EOF marker is absent. The input is probably truncated",
    ),
    "random binary": (os.urandom(200_000), MALFORMED + "not a BGZF (bgzip) file"),
    "text that is not VCF": (b"hello,world\n1,2,3\n" * 100, MALFORMED + "not a BGZF (bgzip) file"),
    "bgzipped text that is not VCF": (
        b"".join(bgzf_blocks([b"name,age\nalice,30\n"])),
        MALFORMED + "the first line must be ##fileformat=VCF",
    ),
    "missing #CHROM": (
        vcf_bytes(VcfSpec(missing_chrom_line=True)),
        MALFORMED + "the header has no #CHROM line",
    ),
    "no sample column": (
        vcf_bytes(VcfSpec(no_samples=True)),
        MALFORMED + "the #CHROM line names no sample",
    ),
    "duplicate sample ids": (
        vcf_bytes(VcfSpec(duplicate_sample=True)),
        "Two individuals or more have the following ID: SAMPLE000001",
    ),
}


@pytest.mark.parametrize("case", list(UPLOAD_TIME))
async def test_refused_at_upload_and_nothing_kept(client, alice, db, storage_dir, case):
    data, message = UPLOAD_TIME[case]
    body = _problem(await upload_raw(client, alice, data), 422)
    assert body["detail"].startswith(message)
    assert body["report"]["errors"][0]["message"].startswith(message)
    await assert_nothing_left(db, storage_dir)


async def test_multipart_refusal_keeps_nothing(client, alice, db, storage_dir):
    files = {"file": ("x.vcf.gz", os.urandom(5000), "application/gzip")}
    _problem(await client.post("/files", files=files, headers=alice), 422)
    await assert_nothing_left(db, storage_dir)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.vcf.gz",
        "a/b.vcf.gz",
        "..\\x.vcf.gz",
        "nul\x00.vcf.gz",
        "bell\x07.vcf.gz",
        "rtl\u202egz.fcv",
        "x" * 300 + ".vcf.gz",
        "..",
        "  ",
    ],
    ids=["dotdot", "slash", "backslash", "nul", "control", "bidi", "long", "dots", "blank"],
)
async def test_bad_file_names_are_refused(client, alice, db, storage_dir, name):
    response = await client.post(
        "/files", content=good_vcf(), headers={**alice, "X-File-Name": _pct(name)}
    )
    body = _problem(response, 422)
    assert body["errors"][0]["field"] == "filename"
    await assert_nothing_left(db, storage_dir)


def _pct(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


async def test_uncompressed_vcf_name_is_refused(client, alice, db, storage_dir):
    body = _problem(
        await upload_raw(client, alice, b"##fileformat=VCFv4.2\n", filename="a.vcf"), 422
    )
    assert "bgzip" in body["detail"]
    await assert_nothing_left(db, storage_dir)


@pytest.mark.parametrize("which", ["sha256", "md5"])
async def test_wrong_expected_checksum_is_refused(client, alice, db, storage_dir, which):
    data = good_vcf()
    wrong = (hashlib.sha256 if which == "sha256" else hashlib.md5)(b"other").hexdigest()
    body = _problem(await upload_raw(client, alice, data, **{which: wrong}), 422)
    assert body["type"].endswith("/checksum-mismatch")
    assert body["expected"] == wrong
    await assert_nothing_left(db, storage_dir)


async def test_content_md5_header_is_checked(client, alice, db, storage_dir):
    import base64

    bad = base64.b64encode(hashlib.md5(b"x").digest()).decode()  # noqa: S324 (checksums, not security)
    response = await client.post(
        "/files",
        params={"filename": "a.bed"},
        content=b"abc",
        headers={**alice, "Content-MD5": bad},
    )
    _problem(response, 422)
    await assert_nothing_left(db, storage_dir)


async def test_body_larger_than_the_limit_is_413(make_app, alice, db, storage_dir):
    from fedimpute_shared.testing.client import app_client

    async with app_client(make_app(max_file_size_bytes=10_000)) as client:

        async def body():
            for _ in range(10):
                yield b"\0" * 4096  # no Content-Length: the limit is enforced while streaming

        response = await client.post(
            "/files", params={"filename": "big.bed"}, content=body(), headers=alice
        )
        problem = _problem(response, 413)
        assert problem["limit_bytes"] == 10_000
        assert "maximum upload size" in problem["detail"]
        declared = await upload_raw(client, alice, b"\0" * 20_000, filename="big.bed")
        assert _problem(declared, 413)["size_bytes"] == 20_000
    await assert_nothing_left(db, storage_dir)


async def test_quota_exceeded_is_507_stating_limit_and_use(make_app, alice, db, storage_dir):
    from fedimpute_shared.testing.client import app_client

    async with app_client(make_app(user_quota_bytes=30_000)) as client:
        first = await upload_raw(client, alice, b"a" * 20_000, filename="one.bed")
        assert first.status_code == 201
        problem = _problem(await upload_raw(client, alice, b"b" * 20_000, filename="two.bed"), 507)
        assert problem["quota_bytes"] == 30_000
        assert problem["used_bytes"] == 20_000
        assert "quota" in problem["detail"]
    assert await file_rows(db) == 1
    assert len(stored_objects(storage_dir)) == 1


async def test_concurrent_uploads_by_one_user_never_exceed_the_quota(
    make_app, alice, db, storage_dir
):
    from fedimpute_shared.testing.client import app_client

    async with app_client(make_app(user_quota_bytes=100_000)) as client:

        async def one(i):
            async def body():
                for _ in range(5):
                    yield bytes([i]) * 6000
                    await asyncio.sleep(0)

            return await client.post(
                "/files", params={"filename": f"f{i}.bed"}, content=body(), headers=alice
            )

        responses = await asyncio.gather(*(one(i) for i in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 3  # 3 x 30,000 bytes fit in 100,000; a 4th would not
    assert statuses.count(507) == 5
    rows = (await db.scalars(select(StoredFile))).all()
    assert sum(f.size_bytes for f in rows) <= 100_000
    assert len(stored_objects(storage_dir)) == 3


async def test_concurrent_uploads_within_quota_all_succeed(client, alice, db):
    datas = [good_vcf(seed=i) for i in range(4)]
    responses = await asyncio.gather(
        *(upload_raw(client, alice, d, filename=f"c{i}.vcf.gz") for i, d in enumerate(datas))
    )
    assert [r.status_code for r in responses] == [201] * 4
    sums = {r.json()["checksums"]["sha256"] for r in responses}
    assert sums == {hashlib.sha256(d).hexdigest() for d in datas}


async def test_client_disconnecting_mid_upload_leaves_nothing(app, alice, db, storage_dir):
    """Drive the ASGI app by hand: 300 kB of a declared 10 MB body, then the client is gone."""
    from asgi_lifespan import LifespanManager

    chunks = [b"\1" * 100_000] * 3
    sent = []

    async def receive():
        if chunks:
            return {"type": "http.request", "body": chunks.pop(), "more_body": True}
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async with LifespanManager(app) as manager:
        scope = _scope("/files", b"filename=big.vcf.gz", alice, manager._state)
        await manager.app(scope, receive, send)
        await asyncio.sleep(0.1)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    await assert_nothing_left(db, storage_dir)


def _scope(path, query, auth, state):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", auth["Authorization"].encode()),
            (b"content-type", b"application/octet-stream"),
            (b"content-length", b"10000000"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": dict(state),
    }


# ------------------------------------------------------------- found by the full validation

FULL_SCAN = {
    "two chromosomes": (
        VcfSpec(second_chromosome="21"),
        None,
        "The provided VCF file contains more than one chromosome. Please split your input VCF "
        "file by chromosome",
    ),
    "unsorted positions": (VcfSpec(unsorted=True), None, MALFORMED + "unsorted positions"),
    "REF equals ALT": (
        VcfSpec(ref_equals_alt=True),
        None,
        "The provided VCF file is malformed at variation rs1000100: reference allele",
    ),
    "chrY": (VcfSpec(chromosome="Y"), None, "Invalid chromosome found: chrY"),
    "chrM": (VcfSpec(chromosome="M", contig_lines=False), "hg38", "Invalid chromosome found: chrM"),
    "chr prefix on hg19": (
        VcfSpec(build="hg19", chr_prefix=True),
        "hg19",
        "Your upload data contains chromosome 'chr20'. This is not a valid hg19 encoding. "
        "Please ensure that your input data is build hg19 and chromosome is encoded as '20'.",
    ),
    "no chr prefix on hg38": (
        VcfSpec(build="hg38", chr_prefix=False),
        "hg38",
        "Your upload data contains chromosome '20'. This is not a valid hg38 encoding. "
        "Please ensure that your input data is build hg38 and chromosome is encoded as 'chr20'.",
    ),
    "too few columns": (VcfSpec(too_few_columns=True), None, "line "),
    "not tab-delimited": (
        VcfSpec(space_delimited=True),
        None,
        "The provided VCF file is not tab-delimited",
    ),
}


@pytest.mark.parametrize("case", list(FULL_SCAN))
async def test_invalid_content_with_wait_is_422_and_nothing_kept(
    client, alice, db, storage_dir, case
):
    spec, build, message = FULL_SCAN[case]
    spec.variants = 200
    params = {"wait": "true", **({"build": build} if build else {})}
    body = _problem(await upload_raw(client, alice, vcf_bytes(spec), **params), 422)
    messages = [e["message"] for e in body["report"]["errors"]]
    assert any(m.startswith(message) for m in messages), messages
    await assert_nothing_left(db, storage_dir)
    assert (await db.scalars(select(OutboxEvent))).all() == []


async def test_ref_equals_alt_message_is_exact(client, alice):
    body = (
        await upload_raw(client, alice, vcf_bytes(VcfSpec(ref_equals_alt=True)), wait="true")
    ).json()
    error = next(e for e in body["report"]["errors"] if "reference allele" in e["message"])
    ref = error["message"].split("reference allele (")[1][0]
    assert error["message"] == (
        f"The provided VCF file is malformed at variation rs1000100: reference allele ({ref}) "
        f"and alternate allele  ({ref}) are the same."
    )
    assert error["line"] is not None
    assert error["record"].startswith("chr20:")


@pytest.mark.parametrize("case", ["two chromosomes", "unsorted positions", "chrY"])
async def test_invalid_content_in_background_is_reported_and_bytes_dropped(
    client, app, alice, db, storage_dir, case
):
    spec, build, message = FULL_SCAN[case]
    response = await upload_raw(
        client, alice, vcf_bytes(spec), **({"build": build} if build else {})
    )
    assert response.status_code == 201
    await wait_validated(app)
    file = (await client.get(f"/files/{response.json()['id']}", headers=alice)).json()
    assert file["status"] == "invalid"
    assert any(e["message"].startswith(message) for e in file["validation"]["errors"])
    assert file["content_available"] is False
    assert stored_objects(storage_dir) == []
    events = (await db.scalars(select(OutboxEvent))).all()
    assert [(e.event_type, e.payload["status"]) for e in events] == [("file.validated", "invalid")]
    gone = await client.get(f"/files/{file['id']}/content", headers=alice)
    assert gone.status_code == 410


async def test_gzip_bomb_is_stopped_by_the_decompression_limit(make_app, alice, db, storage_dir):
    from fedimpute_shared.testing.client import app_client

    bomb = bgzf_bomb(50 * 1024 * 1024)
    assert len(bomb) < 300_000
    async with app_client(make_app(validation_max_compression_ratio=50)) as client:
        response = await upload_raw(client, alice, bomb, wait="true")
    body = _problem(response, 422)
    assert "decompresses to more than" in body["detail"]
    await assert_nothing_left(db, storage_dir)


async def test_validation_time_limit_stops_hostile_work(make_app, alice, db, storage_dir):
    from fedimpute_shared.testing.client import app_client

    bomb = bgzf_bomb(400 * 1024 * 1024)
    async with app_client(make_app(validation_timeout_seconds=1)) as client:
        response = await upload_raw(client, alice, bomb, wait="true")
    body = _problem(response, 422)
    assert "validation took longer than 1 seconds" in body["detail"]
    await assert_nothing_left(db, storage_dir)


async def test_plink_is_stored_but_not_validated(client, app, alice, db):
    response = await upload_raw(client, alice, b"\x6c\x1b\x01" + os.urandom(100), filename="s.bed")
    assert response.status_code == 201
    assert response.json()["status"] == FileStatus.NOT_VALIDATED
    event = (await db.scalars(select(OutboxEvent))).one()
    assert event.payload["status"] == "not_validated"


async def test_undecodable_file_name_header_is_422(client, alice, db, storage_dir):
    response = await client.post(
        "/files", content=b"x", headers={**alice, "X-File-Name": "bad%ff%fename.bed"}
    )
    _problem(response, 422)
    await assert_nothing_left(db, storage_dir)


# ------------------------------------------------------------- found by fuzzing (issue 10)


@pytest.mark.parametrize(
    "field_name",
    [b"\xff\xfe\xfd", "名前".encode(), b"caf\xe9"],
    ids=["not-utf8", "cjk-utf8", "latin1"],
)
async def test_multipart_field_names_that_are_not_latin1_text_are_ignored_not_a_500(
    client, alice, db, storage_dir, field_name
):
    boundary = b"fuzzboundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="' + field_name + b'"\r\n\r\n'
        b"value\r\n"
        b"--" + boundary + b"--\r\n"
    )
    response = await client.post(
        "/files",
        content=body,
        headers=alice | {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    problem = _problem(response, 422)
    assert "no part named 'file'" in problem["detail"]
    await assert_nothing_left(db, storage_dir)


async def test_multipart_file_part_with_a_non_utf8_file_name_is_stored(client, app, alice):
    data = good_vcf()
    boundary = b"fuzzboundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="\xe9tude.vcf.gz"\r\n'
        b"Content-Type: application/gzip\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"--\r\n"
    )
    response = await client.post(
        "/files",
        content=body,
        headers=alice | {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["filename"].endswith("tude.vcf.gz")
    await wait_validated(app)
