"""Cloudgene simulator conformance (spec §4, §6, §7), over real HTTP."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
import pyzipper

from sandbox.pytest_plugin import wait_for
from sandbox.testdata import make_vcf
from sandbox.vcf.bgzf import decompress

SUBMIT = "/api/v2/jobs/submit/imputationserver2"
FORM = {
    "refpanel": "apps@1000g-phase-3-v5",
    "population": "eur",
    "build": "hg19",
    "password": "S3cret!pass",
}


def _files(*names_and_data):
    return [("files", (name, data)) for name, data in names_and_data]


def _submit(client, files=None, **fields) -> str:
    response = client.post(
        SUBMIT, files=files or _files(("chr20.vcf.gz", make_vcf())), data={**FORM, **fields}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Your job was successfully added to the job queue."
    return body["id"]


def _client(server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-Auth-Token": server.users[0].token})


def _finished(client, job_id):
    return wait_for(
        lambda: client.get(f"/api/v2/jobs/{job_id}/status").json(),
        lambda b: b["state"] not in (1, 2, 3),
    )


def test_auth_is_x_auth_token_without_bearer(michigan, alice):
    assert httpx.get(f"{michigan.api_url}/jobs").status_code == 401
    bearer = httpx.get(
        f"{michigan.api_url}/jobs", headers={"X-Auth-Token": f"Bearer {michigan.users[0].token}"}
    )
    assert (bearer.status_code, bearer.content) == (401, b"")
    assert alice.get("/api/v2/jobs").status_code == 200


def test_token_verify(michigan):
    good = httpx.post(
        f"{michigan.api_url}/tokens/verify", data={"token": michigan.users[0].token}
    ).json()
    assert good["valid"] is True
    assert good["message"] == "API Token was created by %s and is valid."
    assert (good["username"], good["name"]) == ("alice", "Alice Demo")
    bad = httpx.post(f"{michigan.api_url}/tokens/verify", data={"token": "nope"}).json()
    assert (bad["valid"], bad["message"]) == (False, "Invalid API Token.")


def test_server_counters_and_app_form(michigan, alice):
    anonymous = httpx.get(f"{michigan.api_url}/server").json()
    assert (anonymous["loggedIn"], anonymous["apps"]) == (False, [])
    logged = alice.get("/api/v2/server").json()
    assert logged["apps"] == [
        {"id": "imputationserver2@2.0.12", "name": "Genotype Imputation", "version": "2.0.12"}
    ]
    assert logged["user"]["username"] == "alice"
    counters = httpx.get(f"{michigan.api_url}/server/counters").json()
    assert set(counters) == {"complete", "queue", "users"}
    assert "size" in counters["queue"]
    form = alice.get("/api/v2/server/apps/imputationserver2").json()
    assert form["id"] == "imputationserver2@2.0.12"
    assert alice.get("/api/v2/server/apps/imputationserver2@2.0.12").json() == form
    params = {p["id"]: p for p in form["params"]}
    assert params["refpanel"]["type"] == "app_list"
    assert {"key": "apps@1000g-phase-3-v5@2.0.0", "value": "1000G Phase 3 (GRCh37/hg19)"} in params[
        "refpanel"
    ]["values"]
    population = params["population"]
    assert (population["type"], population["bind"]) == ("binded_list", "refpanel")
    topmed = next(v for v in population["values"] if v["key"] == "apps@topmed-r3@1.0.0")
    assert topmed["values"] == [{"key": "all", "value": "ALL"}]
    assert "password" not in params
    for ref in ("nope", "imputationserver2@1.0.0"):
        missing = alice.get(f"/api/v2/server/apps/{ref}")
        assert (missing.status_code, missing.json()) == (
            404,
            {
                "message": f"Application {ref} not found or the request requires user authentication.",
                "success": False,
            },
        )


def test_anonymous_callers_see_no_apps_unless_the_server_allows_it(michigan, sandbox_server):
    anonymous = httpx.get(f"{michigan.api_url}/server/apps/imputationserver2")
    assert (anonymous.status_code, anonymous.content) == (401, b"")
    open_server = sandbox_server("michigan", flavour="cg3", anonymous_apps=True)
    listed = httpx.get(f"{open_server.api_url}/server").json()["apps"]
    assert [a["id"] for a in listed] == ["imputationserver2@2.0.12"]
    assert httpx.get(f"{open_server.api_url}/server/apps/imputationserver2").status_code == 200


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("input-format", "Parameter 'format' not found."),
        ("files-source", "Parameter 'files-source' not found."),
        ("refpanel_name", "Parameter 'refpanel_name' not found."),
    ],
)
def test_unknown_parameters_are_refused(alice, field, message):
    response = alice.post(
        SUBMIT, files=_files(("chr20.vcf.gz", make_vcf())), data={**FORM, field: "x"}
    )
    assert (response.status_code, response.json()) == (400, {"message": message, "success": False})


def test_url_uploads_are_accepted_then_fail_and_unknown_apps_are_refused(alice):
    url = alice.post(SUBMIT, data={**FORM, "files": "https://example.org/chr20.vcf.gz"})
    assert url.status_code == 200, url.text
    failed = _finished(alice, url.json()["id"])
    assert failed["state"] == 5
    assert failed["steps"][0]["logMessages"][-1]["message"] == "No vcf.gz input files detected."
    versioned = alice.post(
        "/api/v2/jobs/submit/imputationserver2@2.0.12",
        files=_files(("chr20.vcf.gz", make_vcf())),
        data=FORM,
    )
    assert versioned.status_code == 200, versioned.text
    app = alice.post(
        "/api/v2/jobs/submit/imputationserver",
        files=_files(("chr20.vcf.gz", make_vcf())),
        data=FORM,
    )
    assert (app.status_code, app.json()) == (
        404,
        {"message": "Application 'imputationserver' not found.", "success": False},
    )


def test_job_runs_to_success_with_encrypted_results(michigan, alice):
    job_id = _submit(
        alice,
        _files(("chr20.vcf.gz", make_vcf()), ("chr21.vcf.gz", make_vcf(chrom="21"))),
        **{"job-name": "fed-123"},
    )
    seen = set()
    body = wait_for(
        lambda: alice.get(f"/api/v2/jobs/{job_id}").json(),
        lambda b: seen.add(b["state"]) or b["state"] == 4,
    )
    assert {1, 2, 3, 4} <= seen
    assert body["name"] == "fed-123"
    assert body["applicationId"] == "imputationserver2"
    assert [s["name"] for s in body["steps"]] == [
        "Input Validation",
        "Quality Control",
        "Phasing and Imputation",
        "Summary",
    ]
    validation = body["steps"][0]["logMessages"][0]
    assert validation["type"] == 0
    assert validation["message"].startswith("2 valid VCF file(s) found.\n\nSamples: 25")
    files = {f["name"]: f for f in body["outputParams"][0]["files"]}
    assert set(files) == {"chr_20.zip", "chr_21.zip", "qc_report.txt", "quality-control.html"}
    assert files["chr_20.zip"]["count"] == 2
    assert files["chr_20.zip"]["path"] == f"{job_id}/output/chr_20.zip"
    share_url = f"{michigan.base_url}/share/results/{files['chr_20.zip']['hash']}/chr_20.zip"
    redirect = httpx.get(share_url)
    assert redirect.status_code == 302  # to the object store, as an S3 workspace answers
    assert "/_object-store/results/" in redirect.headers["location"]
    share = httpx.get(redirect.headers["location"])
    assert share.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(share.content))
    dose = decompress(archive.read("chr20.dose.vcf.gz", pwd=b"S3cret!pass")).decode()
    header = next(line for line in dose.splitlines() if line.startswith("#CHROM"))
    assert header.split("\t")[9:12] == ["S1", "S2", "S3"]
    first = next(line for line in dose.splitlines() if not line.startswith("#")).split("\t")
    assert (first[0], first[1], first[8]) == ("20", "60000", "GT:DS:GP")
    assert "R2=" in first[7]
    info = archive.read("chr20.info.gz", pwd=b"S3cret!pass")
    assert b"Rsq" in __import__("gzip").decompress(info).splitlines()[0]
    again = httpx.get(
        f"{michigan.base_url}/downloads/{job_id}/{files['chr_20.zip']['hash']}/chr_20.zip",
        follow_redirects=True,
    )
    assert again.status_code == 200
    assert again.content == share.content
    spent = httpx.get(share_url)
    assert (spent.status_code, spent.json()) == (
        400,
        {"message": "number of max downloads exceeded.", "success": False},
    )
    script = httpx.get(f"{michigan.base_url}/get/{body['outputParams'][0]['hash']}").text
    assert script.startswith("#!/bin/bash\nset -e\n")
    assert (
        f"curl -L {michigan.base_url}/share/results/{files['qc_report.txt']['hash']}/qc_report.txt -o qc_report.txt --create-dirs"
        in script
    )


def test_generated_password_is_printed_and_aes_checkbox(alice):
    fields = {k: v for k, v in FORM.items() if k != "password"}
    response = alice.post(
        SUBMIT, files=_files(("chr20.vcf.gz", make_vcf())), data={**fields, "aesEncryption": "no"}
    )
    body = _finished(alice, response.json()["id"])
    summary = body["steps"][-1]["logMessages"][0]["message"]
    assert "We encrypted the results with the following password: <b>" in summary
    password = summary.split("<b>")[1].split("</b>")[0]
    zip_file = body["outputParams"][0]["files"][0]
    data = alice.get(
        f"/share/results/{zip_file['hash']}/{zip_file['name']}", follow_redirects=True
    ).content
    assert pyzipper.AESZipFile(io.BytesIO(data)).read("chr20.info.gz", pwd=password.encode())


@pytest.mark.parametrize(
    ("files", "fields", "message"),
    [
        (
            _files(("chr20.vcf.gz", make_vcf(compression="gzip"))),
            {},
            "The provided VCF file is malformed.\nError: [tabix] the compression of 'chr20.vcf.gz' is not BGZF",
        ),
        (
            _files(
                ("chr20.vcf.gz", make_vcf()), ("chr21.vcf.gz", make_vcf(chrom="21", samples=21))
            ),
            {},
            "Please double check, if all uploaded VCF files include the same amount of samples (21 vs 25)",
        ),
        (
            _files(("chr20.vcf.gz", make_vcf(samples=5))),
            {},
            "At least 20 samples must be uploaded.",
        ),
        (
            _files(("chr20.vcf.gz", make_vcf(unphased=True))),
            {"phasing": "no_phasing"},
            "Your input data is unphased. Please select an algorithm for phasing.",
        ),
        (_files(("chr20.vcf", make_vcf())), {}, "No vcf.gz input files detected."),
        (
            _files(("chr20.vcf.gz", make_vcf())),
            {"refpanel": "apps@nope"},
            "Application nope is not installed or wrong permissions.",
        ),
    ],
)
def test_validation_failures_end_in_state_5(alice, files, fields, message):
    body = _finished(alice, _submit(alice, files, **fields))
    assert body["state"] == 5
    assert body["steps"][-1]["logMessages"][-1] == {
        **body["steps"][-1]["logMessages"][-1],
        "type": 1,
        "message": message,
    }


def test_qc_only_mode_has_no_zips(alice):
    body = _finished(alice, _submit(alice, mode="qc_only"))
    assert body["state"] == 4
    assert [f["name"] for f in body["outputParams"][0]["files"]] == [
        "qc_report.txt",
        "quality-control.html",
    ]


def test_cancel_restart_delete_and_access(michigan, alice):
    michigan.admin.set(stuck_jobs=True)
    job_id = _submit(alice)
    wait_for(lambda: alice.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: b["state"] == 2)
    bob = {"X-Auth-Token": michigan.users[1].token}
    other = httpx.get(f"{michigan.api_url}/jobs/{job_id}/status", headers=bob)
    assert (other.status_code, other.json()) == (
        403,
        {"message": "Access denied.", "success": False},
    )
    missing = alice.get("/api/v2/jobs/job-1/status")
    assert (missing.status_code, missing.json()["message"]) == (404, "Job job-1 not found.")
    cancelled = alice.get(f"/api/v2/jobs/{job_id}/cancel")
    assert cancelled.json()["state"] == 6
    restart = alice.get(f"/api/v2/jobs/{job_id}/restart")
    assert (restart.status_code, restart.json()) == (
        400,
        {"message": f"Job {job_id} is not pending.", "success": False},
    )
    # Cloudgene 3 deletes jobs only for session logins: an API token gets a bare 403.
    refused = alice.delete(f"/api/v2/jobs/{job_id}")
    assert (refused.status_code, refused.content) == (403, b"")
    assert httpx.delete(f"{michigan.api_url}/jobs/{job_id}").status_code == 401
    assert job_id in [j["id"] for j in alice.get("/api/v2/jobs").json()["data"]]


def test_dead_jobs_restart(michigan, alice):
    michigan.admin.set(fail_at_step="qc", fail_mode="dead")
    job_id = _submit(alice)
    assert _finished(alice, job_id)["state"] == -1
    michigan.admin.reset()
    restart = alice.get(f"/api/v2/jobs/{job_id}/restart").json()
    assert restart["success"] is True
    assert restart["message"] == "Your job was successfully added to the job queue."
    assert _finished(alice, job_id)["state"] == 4


def test_paged_list_shape(alice):
    _submit(alice)
    body = alice.get("/api/v2/jobs?page=1").json()
    assert set(body) == {"count", "page", "pageSize", "prev", "next", "pages", "data"}
    assert (body["page"], body["pageSize"], body["prev"]) == (1, 15, None)
    assert body["pages"][0] == 1
    assert len(body["data"]) <= 15


def test_max_running_jobs_and_queue_position(sandbox_server):
    server = sandbox_server("michigan", max_parallel_jobs=1, faults={"stuck_jobs": True})
    with _client(server) as client:
        first, second = _submit(client), _submit(client)
        wait_for(
            lambda: client.get(f"/api/v2/jobs/{first}/status").json(), lambda b: b["state"] == 2
        )
        waiting = client.get(f"/api/v2/jobs/{second}/status").json()
        assert (waiting["state"], waiting["positionInQueue"]) == (1, 1)
        third = client.post(SUBMIT, files=_files(("chr20.vcf.gz", make_vcf())), data=FORM)
        assert (third.status_code, third.json()) == (
            400,
            {"message": "Only 2 jobs per user can be executed simultaneously.", "success": False},
        )


def test_retention_retires_results(sandbox_server):
    timings = {
        "queue_seconds": 0.02,
        "step_seconds": 0.02,
        "export_seconds": 0.02,
        "notify_after_seconds": 0.2,
        "retire_after_seconds": 1.5,
    }
    server = sandbox_server("michigan", timings=timings)
    with _client(server) as client:
        job_id = _submit(client)
        notified = wait_for(
            lambda: client.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: b["state"] == 8
        )
        assert notified["state"] == 8
        assert notified["deletedOn"] > 0
        retired = wait_for(
            lambda: client.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: b["state"] == 7
        )
        file = retired["outputParams"][0]["files"][0]
        gone = client.get(f"/share/results/{file['hash']}/{file['name']}")
        assert (gone.status_code, gone.json()["message"]) == (404, "File not found in workspace.")


def test_cg2_flavour_differences(sandbox_server):
    server = sandbox_server("michigan", flavour="cg2")
    token = server.users[0].token
    unauthenticated = httpx.get(f"{server.api_url}/jobs")
    assert unauthenticated.json() == {
        "success": False,
        "message": "The request requires user authentication.",
    }
    submit = httpx.post(
        f"{server.api_url}/jobs/submit/imputationserver?token={token}",
        files=_files(("chr20.vcf.gz", make_vcf())),
        data={**FORM, "password": "a&b"},
    )
    job_id = submit.json()["id"]
    body = wait_for(
        lambda: httpx.get(f"{server.api_url}/jobs/{job_id}", params={"token": token}).json(),
        lambda b: b["state"] == 4,
    )
    assert {"finishedOn", "running", "complete", "progress", "setupRunning"} <= set(body)
    listing = httpx.get(f"{server.api_url}/jobs", params={"token": token}).json()
    assert "pageSize" not in listing
    assert "prev" not in listing
    assert "next" not in listing
    assert "steps" not in listing["data"][0]
    verify = httpx.post(f"{server.api_url}/tokens/verify", data={"token": token}).json()
    assert verify["valid"] is True
    assert verify["message"].startswith("API Token was created by alice and is valid until ")
    zip_file = body["outputParams"][0]["files"][0]
    data = httpx.get(
        f"{server.base_url}/share/results/{zip_file['hash']}/{zip_file['name']}"
    ).content
    # Cloudgene HTML-escapes form values, so the zip password really is "a&amp;b".
    assert zipfile.ZipFile(io.BytesIO(data)).read("chr20.info.gz", pwd=b"a&amp;b")
    unknown = httpx.post(
        f"{server.api_url}/jobs/submit/imputationserver?token={token}", data={"input-format": "<x>"}
    )
    assert unknown.json() == {"success": False, "message": "Parameter 'format' not found."}


def test_download_redirect_knob_off_serves_the_file(sandbox_server):
    server = sandbox_server("michigan", flavour="cg3", download_redirect=False)
    with _client(server) as client:
        body = _finished(client, _submit(client))
    report = next(f for f in body["outputParams"][0]["files"] if f["name"] == "qc_report.txt")
    direct = httpx.get(f"{server.base_url}/share/results/{report['hash']}/qc_report.txt")
    assert direct.status_code == 200
    assert direct.content.startswith(b"Input Validation")


def test_maintenance_refuses_jobs_but_counters_and_server_answer(sandbox_server):
    server = sandbox_server("michigan", flavour="cg3", maintenance=True)
    with _client(server) as client:
        refused = client.post(SUBMIT, files=_files(("chr20.vcf.gz", make_vcf())), data=FORM)
        assert (refused.status_code, refused.json()["message"]) == (
            503,
            "This functionality is currently under maintenance.",
        )
        assert client.get("/api/v2/server/counters").status_code == 200
        assert client.get("/api/v2/server").json()["maintenace"] is True  # sic, as Cloudgene
