"""POST /files: raw and multipart streaming uploads, checksums, validation in the background."""

import hashlib

from .conftest import good_vcf, upload_raw, wait_validated


async def test_raw_upload_stores_file_with_checksums_then_validates(client, app, alice, user_id):
    data = good_vcf(samples=25, variants=300)
    response = await upload_raw(client, alice, data, build="hg38")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "validating"
    assert body["owner_id"] == str(user_id)
    assert body["size_bytes"] == len(data)
    assert body["checksums"] == {
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 (checksums, not security)
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert response.headers["location"] == f"/files/{body['id']}"
    await wait_validated(app)
    done = (await client.get(f"/files/{body['id']}", headers=alice)).json()
    assert done["status"] == "valid", done["validation"]
    report = done["validation"]
    assert report["errors"] == []
    assert report["statistics"]["samples"] == 25
    assert report["statistics"]["variants"] == 300
    assert report["statistics"]["chromosome"] == "chr20"
    assert report["statistics"]["phased"] is True
    assert report["build"]["detected"] == "hg38"
    assert report["build"]["detected_from"] == "contig_lengths"
    assert done["has_index"] is True


async def test_multipart_upload_streams_the_file_part(client, app, alice):
    data = good_vcf()
    files = {"file": ("my study.vcf.gz", data, "application/gzip")}
    form = {"sha256": hashlib.sha256(data).hexdigest(), "build": "hg38"}
    response = await client.post("/files", files=files, data=form, headers=alice)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["filename"] == "my study.vcf.gz"
    assert body["declared_build"] == "hg38"
    assert body["size_bytes"] == len(data)
    await wait_validated(app)
    done = (await client.get(f"/files/{body['id']}", headers=alice)).json()
    assert done["status"] == "valid"


async def test_wait_true_returns_the_validated_file(client, alice):
    response = await upload_raw(client, alice, good_vcf(), wait="true")
    assert response.status_code == 201
    assert response.json()["status"] == "valid"


async def test_domain_metrics_count_uploads_and_validations(client, app, alice):
    await upload_raw(client, alice, good_vcf())
    await wait_validated(app)
    text = (await client.get("/metrics")).text
    assert 'file_uploads_total{method="simple"} 1.0' in text
    assert 'file_validations_total{status="valid"} 1.0' in text
