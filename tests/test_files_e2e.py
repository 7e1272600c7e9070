"""Issue 4, end to end through the gateway of a real fleet: a raw (curl-style) upload and a tus
upload interrupted and resumed with a standard client (tuspy), the validation report, a range
download and a signed link without a token, all byte-identical; and another user's file is a 404."""

import gc
import hashlib
import secrets
import subprocess
import time

import httpx
import pytest
from tusclient import client as tus_client

from file_manager.testdata import VcfSpec, vcf_bytes

pytestmark = [
    pytest.mark.fleet,
    # tuspy (requests) leaves refused sockets to the garbage collector; they are collected here
    pytest.mark.filterwarnings(
        "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
    ),
]
PASSWORD = "Correct-Horse-Battery-Staple-42"


def new_user(api):
    name = f"fm{secrets.token_hex(3)}"
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    token = api.post("/api/auth/login", json={"login": name, "password": PASSWORD}).json()[
        "access_token"
    ]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def alice(api):
    return new_user(api)


@pytest.fixture(scope="module")
def vcf(tmp_path_factory):
    data = vcf_bytes(VcfSpec(samples=40, variants=5000, build="hg38", chromosome="20"))
    path = tmp_path_factory.mktemp("vcf") / "chr20.vcf.gz"
    path.write_bytes(data)
    return path


def wait_validated(api, headers, file_id):
    for _ in range(200):
        body = api.get(f"/api/files/{file_id}", headers=headers).json()
        if body["status"] not in ("uploading", "validating"):
            return body
        time.sleep(0.1)
    pytest.fail(f"file {file_id} still {body['status']}")


def test_curl_upload_validate_and_download_by_range(api, alice, vcf, fleet):
    # exactly what a user types: curl -T file with the expected checksum
    sha256 = hashlib.sha256(vcf.read_bytes()).hexdigest()
    token = alice["Authorization"].split()[1]
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            "-T",
            str(vcf),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            f"X-File-Name: {vcf.name}",
            "-H",
            f"X-Checksum-Sha256: {sha256}",
            f"{fleet.gateway}/api/files",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"id"' in result.stdout, result.stdout + result.stderr
    file_id = httpx.Response(200, content=result.stdout).json()["id"]
    report = wait_validated(api, alice, file_id)
    assert report["status"] == "valid", report
    assert report["checksums"]["sha256"] == sha256
    stats = report["validation"]["statistics"]
    assert stats["samples"] == 40
    assert stats["variants"] == 5000
    data = vcf.read_bytes()
    whole = api.get(f"/api/files/{file_id}/content", headers=alice)
    assert whole.content == data
    part = api.get(f"/api/files/{file_id}/content", headers={**alice, "Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]


def test_tus_upload_interrupted_and_resumed_through_the_gateway(api, alice, vcf, fleet):
    data = vcf.read_bytes()
    half = (len(data) // 2 // 8192) * 8192
    client = tus_client.TusClient(f"{fleet.gateway}/api/files/uploads", headers=alice)
    with open(vcf, "rb") as stream:
        first = client.uploader(
            file_stream=stream,
            chunk_size=8192,
            metadata={"filename": vcf.name},
            upload_checksum=True,
        )
        first.upload(stop_at=half)
    assert first.offset == half
    assert first.url.startswith(fleet.gateway + "/api/files/uploads/") or first.url.startswith(
        "/api/files/uploads/"
    )
    # a new client resumes from the upload URL, asking the server where it stopped
    with open(vcf, "rb") as stream:
        resumed = tus_client.TusClient(fleet.gateway, headers=alice).uploader(
            file_stream=stream, url=first.url, chunk_size=65536, upload_checksum=True
        )
        assert resumed.offset == half
        resumed.upload()
    gc.collect()
    file_id = first.url.rstrip("/").rsplit("/", 1)[1]
    report = wait_validated(api, alice, file_id)
    assert report["status"] == "valid", report
    assert api.get(f"/api/files/{file_id}/content", headers=alice).content == data


def test_signed_link_downloads_without_a_token_once(api, alice, vcf):
    uploaded = api.post(
        "/api/files", content=vcf.read_bytes(), headers={**alice, "X-File-Name": "link.vcf.gz"}
    )
    assert uploaded.status_code in (201, 202), uploaded.text
    file_id = uploaded.json()["id"]
    wait_validated(api, alice, file_id)
    link = api.post(
        f"/api/files/{file_id}/links",
        json={"single_use": True, "expires_in_seconds": 600},
        headers=alice,
    )
    assert link.status_code == 201, link.text
    url = link.json()["url"]
    assert url.startswith("/api/files/download/")
    first = httpx.get(api.base_url.join(url))  # no Authorization at all, like wget
    assert first.status_code == 200
    assert first.content == vcf.read_bytes()
    assert "attachment" in first.headers["content-disposition"]
    assert httpx.get(api.base_url.join(url)).status_code in (404, 410)  # single use


def test_invalid_file_is_reported_and_another_users_file_is_404(api, alice):
    bad = vcf_bytes(VcfSpec(samples=30, variants=300, second_chromosome="21"))
    uploaded = api.post(
        "/api/files",
        params={"filename": "two_chroms.vcf.gz", "wait": "true"},
        content=bad,
        headers=alice,
    )
    assert uploaded.status_code == 422
    assert "more than one chromosome" in uploaded.text
    good = api.post(
        "/api/files",
        params={"filename": "mine.vcf.gz"},
        content=vcf_bytes(VcfSpec()),
        headers=alice,
    )
    file_id = good.json()["id"]
    bob = new_user(api)
    assert api.get(f"/api/files/{file_id}", headers=bob).status_code == 404
    assert api.get(f"/api/files/{file_id}/content", headers=bob).status_code == 404
    assert api.delete(f"/api/files/{file_id}", headers=bob).status_code == 404
    assert api.get(f"/api/files/{file_id}", headers=alice).status_code == 200
