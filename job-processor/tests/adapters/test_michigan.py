"""The Cloudgene adapter against recorded shapes (respx): every state code, error shape and quirk
of specs/external-protocols.md §4-6."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest
import respx

from job_processor.adapters.base import (
    AdapterError,
    AuthFailed,
    NotSubmittable,
    RemoteNotFound,
    RemoteRejected,
    RemoteResult,
    RemoteUnavailable,
    ResultUnreadable,
)
from job_processor.adapters.michigan import MichiganAdapter, job_status
from sandbox.archive import encrypted_zip

from .helpers import PASSWORD, input_file, job_spec, read_all, target, token

HOST = "https://impute.example.org"
API = f"{HOST}/api/v2"
TOKEN = token("cg-token")


@pytest.fixture(autouse=True)
def valid_token(respx_mock):
    """Submit checks the token first (anonymous POST /tokens/verify)."""
    return respx_mock.post(f"{API}/tokens/verify").respond(
        200, json={"valid": True, "username": "alice"}
    )


@pytest.fixture
async def adapter():
    async with httpx.AsyncClient(timeout=5) as client:
        yield MichiganAdapter(client)


def cg3_job(state, *, steps=(), files=(), position=0, **extra):
    return {
        "application": "Genotype Imputation 2.0.12",
        "applicationId": "imputationserver2",
        "id": "job-20250507-003405-057",
        "name": "fed",
        "state": state,
        "positionInQueue": position,
        "submittedOn": 1746578045057,
        "startTime": 0,
        "endTime": 0,
        "steps": [
            {"id": i, "name": name, "empty": False, "logMessages": messages}
            for i, (name, messages) in enumerate(steps, start=1)
        ],
        "outputParams": [
            {
                "id": 7,
                "name": "output",
                "description": "Downloads",
                "download": True,
                "hash": "ph",
                "files": list(files),
            }
        ],
    } | extra


def message(text, kind=0):
    return {"success": kind == 0, "message": text, "type": kind, "time": 1}


# ---------------------------------------------------------------------------------- states
@pytest.mark.parametrize(
    ("code", "state"),
    [
        (-1, "failed"),
        (1, "queued"),
        (2, "running"),
        (3, "running"),
        (4, "completed"),
        (5, "failed"),
        (6, "cancelled"),
        (7, "completed"),
        (8, "completed"),
        (9, "failed"),
        (10, "cancelled"),
        (42, "unknown"),
    ],
)
def test_every_state_code_maps_as_the_spec_says(code, state):
    status = job_status(cg3_job(code))
    assert status.state == state
    assert status.remote_state == str(code)
    if state == "failed":
        assert status.message
    if code == 7:
        assert "retention" in status.message
    if code == 42:
        assert "unknown state 42" in status.message


def test_failure_text_is_the_last_error_message_unescaped():
    job = cg3_job(
        5,
        steps=[
            ("Input Validation", [message("1 valid VCF file(s) found.")]),
            (
                "Quality Control",
                [
                    message(
                        "Error: No chunks passed the QC step. <b>Imputation</b> cannot be started!",
                        1,
                    )
                ],
            ),
        ],
    )
    status = job_status(job)
    assert status.message == "Error: No chunks passed the QC step. Imputation cannot be started!"
    assert status.steps == [
        "Input Validation: 1 valid VCF file(s) found.",
        "Quality Control: Error: No chunks passed the QC step. Imputation cannot be started!",
    ]


def test_cg2_escaped_messages_and_progress_and_queue_position():
    waiting = job_status(cg3_job(1, position=3))
    assert (waiting.queue_position, waiting.progress) == (3, 0.0)
    running = job_status(cg3_job(2, position=0))
    assert running.queue_position is None
    cg2 = {
        "id": "job-1",
        "state": 5,
        "progress": -1,
        "positionInQueue": 0,
        "steps": [
            {
                "id": 1,
                "name": "Input Validation",
                "logMessages": [
                    {"message": "Population &#39;xx&#39; is not supported &amp; stops", "type": 1}
                ],
            }
        ],
    }
    status = job_status(cg2)
    assert status.message == "Population 'xx' is not supported & stops"
    assert job_status({"id": "j", "state": 2, "progress": 40}).progress == 0.4
    dead = job_status(cg3_job(-1))
    assert "state -1" in dead.message


def test_a_state_that_is_not_a_number_is_a_remote_fault():
    with pytest.raises(RemoteUnavailable):
        job_status({"id": "j", "state": "RUNNING"})
    with pytest.raises(RemoteUnavailable):
        job_status({"id": "j"})


# ---------------------------------------------------------------------------------- submit
@respx.mock
async def test_submit_streams_each_file_as_a_files_part_with_our_fields(adapter):
    first = input_file("study chr20.vcf.gz", b"\x1f\x8b" + b"A" * 100)
    second = input_file("chr21.vcf.bgz", b"\x1f\x8b" + b"B" * 50)
    spec = job_spec([first, second], population="afr")
    route = respx.post(f"{API}/jobs/submit/imputationserver2@2.0.12").respond(
        200,
        json={
            "success": True,
            "message": "Your job was successfully added to the job queue.",
            "id": "job-1",
        },
    )
    submitted = await adapter.submit(
        target("michigan", HOST, cloudgene_app_id="imputationserver2@2.0.12"), TOKEN, spec
    )
    assert submitted.remote_id == "job-1"
    request = route.calls.last.request
    assert request.headers["x-auth-token"] == "cg-token"
    assert "authorization" not in request.headers
    body = request.content
    assert int(request.headers["content-length"]) == len(body)
    fields = _multipart(request)
    assert fields["refpanel"] == ["apps@1000g-phase-3-v5"]
    assert fields["build"] == ["hg19"]
    assert fields["phasing"] == ["eagle"]
    assert fields["mode"] == ["imputation"]
    assert fields["population"] == ["afr"]
    assert fields["r2Filter"] == ["0.3"]
    assert fields["password"] == [PASSWORD]
    assert fields["job-name"] == [f"My study ({spec.tag})"]
    assert fields["files"] == [
        ("study_chr20.vcf.gz", b"\x1f\x8b" + b"A" * 100),
        ("chr21.vcf.gz", b"\x1f\x8b" + b"B" * 50),
    ]
    assert set(fields) == {
        "refpanel",
        "build",
        "phasing",
        "mode",
        "population",
        "r2Filter",
        "password",
        "job-name",
        "files",
    }


def _multipart(request: httpx.Request) -> dict[str, list]:
    """Parse the body the way a server does (the stdlib email parser)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    raw = (
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    )
    message = BytesParser(policy=HTTP).parsebytes(raw)
    fields: dict[str, list] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        fields.setdefault(name, []).append((filename, payload) if filename else payload.decode())
    return fields


@respx.mock
async def test_qc_only_mode_and_optional_fields_per_app_generation(adapter):
    route = respx.post(url__regex=rf"{API}/jobs/submit/.*").respond(
        200, json={"success": True, "id": "j"}
    )
    spec = job_spec([input_file("a.vcf.gz", b"x")], mode="qc_only", population=None, r2_filter=None)
    await adapter.submit(target("michigan", HOST), TOKEN, spec)
    fields = _multipart(route.calls.last.request)
    assert fields["mode"] == ["qc_only"]
    assert "population" not in fields
    assert "r2Filter" not in fields
    await adapter.submit(target("michigan", HOST, cloudgene_app_id="minimac4"), TOKEN, spec)
    assert route.calls.last.request.url.path == "/api/v2/jobs/submit/minimac4"
    assert _multipart(route.calls.last.request)["mode"] == ["qconly"]
    with pytest.raises(NotSubmittable, match="eagle or no_phasing"):
        await adapter.submit(
            target("michigan", HOST, cloudgene_app_id="minimac4"),
            TOKEN,
            job_spec([input_file("a.vcf.gz", b"x")], phasing="beagle"),
        )


async def test_submit_refuses_what_cannot_be_sent(adapter):
    spec = job_spec([input_file("a.vcf.gz", b"x")])
    with pytest.raises(NotSubmittable, match="application id"):
        await adapter.submit(target("michigan", HOST, cloudgene_app_id=None), TOKEN, spec)
    with pytest.raises(NotSubmittable, match="password"):
        await adapter.submit(
            target("michigan", HOST), TOKEN, job_spec(spec.inputs, result_password=None)
        )
    for unsafe in ("a&b-long-password", "short", "pässwörd-long"):
        with pytest.raises(NotSubmittable, match="printable ASCII"):
            await adapter.submit(
                target("michigan", HOST), TOKEN, job_spec(spec.inputs, result_password=unsafe)
            )
    with pytest.raises(AuthFailed, match="No API token"):
        await adapter.submit(target("michigan", HOST), token(""), spec)


@respx.mock
async def test_an_input_shorter_than_recorded_stops_the_upload(adapter):
    respx.post(url__regex=rf"{API}/jobs/submit/.*").respond(200, json={"success": True, "id": "j"})
    short = input_file("a.vcf.gz", b"12345")
    object.__setattr__(short, "size", 10)
    with pytest.raises(AdapterError, match="streamed 5 bytes, not the 10"):
        await adapter.submit(target("michigan", HOST), TOKEN, job_spec([short]))


@respx.mock
async def test_an_input_of_unknown_size_is_sent_chunked(adapter):
    route = respx.post(url__regex=rf"{API}/jobs/submit/.*").respond(
        200, json={"success": True, "id": "j"}
    )
    unknown = input_file("a.vcf.gz", b"12345")
    object.__setattr__(unknown, "size", 0)
    await adapter.submit(target("michigan", HOST), TOKEN, job_spec([unknown]))
    request = route.calls.last.request
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert _multipart(request)["files"] == [("a.vcf.gz", b"12345")]


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (
            400,
            {"message": "Parameter 'input-format' not found.", "success": False},
            RemoteRejected,
            "Parameter 'format'",
        ),
        (
            400,
            "java.lang.IllegalArgumentException: boom",
            RemoteRejected,
            "java.lang.IllegalArgumentException: boom",
        ),
        (
            400,
            {"success": False, "message": "Only 2 jobs per user can be executed simultaneously."},
            RemoteUnavailable,
            "Only 2 jobs",
        ),
        (401, b"", AuthFailed, "HTTP 401"),
        (403, {"message": "Access denied.", "success": False}, AuthFailed, "Access denied."),
        (
            404,
            {"message": "Application 'imputationserver2' not found.", "success": False},
            RemoteRejected,
            "not found",
        ),
        (
            503,
            {"message": "This functionality is currently under maintenance.", "success": False},
            RemoteUnavailable,
            "maintenance",
        ),
        (500, "<html><body>Internal error</body></html>", RemoteUnavailable, "HTTP 500"),
        (429, b"", RemoteUnavailable, "429"),
        (200, b'{"success": true, "id": ', RemoteUnavailable, "malformed JSON"),
        (200, {"success": False, "message": "no"}, RemoteRejected, "no"),
    ],
)
@respx.mock
async def test_submit_errors_map_to_the_hierarchy(adapter, status, body, error, text):
    if text == "Parameter 'format'":
        text = "Parameter 'input-format' not found."
    kwargs = (
        {"json": body}
        if isinstance(body, dict)
        else {"content": body if isinstance(body, bytes) else body.encode()}
    )
    respx.post(url__regex=rf"{API}/jobs/submit/.*").respond(status, **kwargs)
    with pytest.raises(error) as caught:
        await adapter.submit(
            target("michigan", HOST), TOKEN, job_spec([input_file("a.vcf.gz", b"x")])
        )
    assert text in caught.value.message


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
@respx.mock
async def test_transport_failures_are_transient(adapter, exc):
    respx.get(f"{API}/jobs/j/status").mock(side_effect=exc)
    with pytest.raises(RemoteUnavailable):
        await adapter.status(target("michigan", HOST), TOKEN, "j")


@respx.mock
async def test_status_not_found_and_huge_answers(adapter):
    respx.get(f"{API}/jobs/gone/status").respond(
        404, json={"message": "Job gone not found.", "success": False}
    )
    with pytest.raises(RemoteNotFound, match="Job gone not found"):
        await adapter.status(target("michigan", HOST), TOKEN, "gone")
    respx.get(f"{API}/jobs/big/status").respond(
        200, content=b"[" + b"1," * (5 * 1024 * 1024) + b"1]"
    )
    with pytest.raises(RemoteUnavailable, match="exceeds"):
        await adapter.status(target("michigan", HOST), TOKEN, "big")
    respx.get(f"{API}/jobs/list/status").respond(200, json=[1, 2])
    with pytest.raises(RemoteUnavailable, match="not a JSON object"):
        await adapter.status(target("michigan", HOST), TOKEN, "list")


# ---------------------------------------------------------------------------------- verify, find, cancel
@respx.mock
async def test_verify_credentials_uses_the_anonymous_token_check(adapter):
    route = respx.post(f"{API}/tokens/verify").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "valid": True,
                    "message": "API Token was created by %s and is valid.",
                    "username": "alice",
                },
            ),
            httpx.Response(
                200, json={"valid": False, "message": "Invalid API Token.", "expire": 1}
            ),
        ]
    )
    ok = await adapter.verify_credentials(target("michigan", HOST), TOKEN)
    assert ok.ok
    assert "alice" in ok.message
    assert route.calls.last.request.content == b"token=cg-token"
    assert "x-auth-token" not in route.calls.last.request.headers
    bad = await adapter.verify_credentials(target("michigan", HOST), TOKEN)
    assert (bad.ok, bad.message) == (False, "Invalid API Token.")
    missing = await adapter.verify_credentials(target("michigan", HOST), token(""))
    assert not missing.ok


@respx.mock
async def test_find_searches_paged_and_bare_lists_for_the_tag(adapter):
    spec = job_spec([input_file("a.vcf.gz", b"x")])
    page1 = {
        "count": 16,
        "page": 1,
        "pageSize": 15,
        "prev": None,
        "next": 2,
        "pages": [1, 2],
        "data": [{"id": f"job-{i}", "name": f"other {i}", "state": 4} for i in range(15)],
    }
    page2 = {
        "count": 16,
        "page": 2,
        "pageSize": 15,
        "prev": 1,
        "next": None,
        "pages": [1, 2],
        "data": [{"id": "job-mine", "name": f"My study ({spec.tag})", "state": 1}],
    }
    route = respx.get(f"{API}/jobs").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )
    found = await adapter.find(target("michigan", HOST), TOKEN, spec)
    assert found.remote_id == "job-mine"
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]
    respx.get(f"{API}/jobs").respond(200, json=[{"id": "x", "name": "unrelated"}])
    assert await adapter.find(target("michigan", HOST), TOKEN, spec) is None
    respx.get(f"{API}/jobs").respond(200, json={"count": 0, "page": 0, "pages": [], "data": []})
    assert await adapter.find(target("michigan", HOST), TOKEN, spec) is None


@respx.mock
async def test_cancel_is_a_get_and_says_when_nothing_changed(adapter):
    route = respx.get(f"{API}/jobs/j/cancel").mock(
        side_effect=[httpx.Response(200, json=cg3_job(6)), httpx.Response(200, json=cg3_job(4))]
    )
    done = await adapter.cancel(target("michigan", HOST), TOKEN, "j")
    assert done.ok
    assert route.calls.last.request.headers["x-auth-token"] == "cg-token"
    late = await adapter.cancel(target("michigan", HOST), TOKEN, "j")
    assert not late.ok
    assert "state 4" in late.message


# ---------------------------------------------------------------------------------- results and downloads
def _file(name, count=10):
    return {
        "name": name,
        "path": f"job-1/output/{name}",
        "hash": f"h-{name}",
        "size": "1 MB",
        "count": count,
    }


@respx.mock
async def test_results_come_from_output_params(adapter):
    job = cg3_job(4, files=[_file("chr_20.zip"), _file("qc_report.txt", count=0)])
    job["outputParams"].append(
        {"id": 8, "name": "logs", "download": False, "hash": "x", "files": [_file("secret.log")]}
    )
    job["outputParams"][0]["files"].append({"name": "broken"})
    respx.get(f"{API}/jobs/job-1").respond(200, json=job)
    results = await adapter.results(target("michigan", HOST), TOKEN, "job-1")
    assert [r.name for r in results] == ["chr_20.zip", "qc_report.txt"]
    zip_result, report = results
    assert zip_result.url == f"{HOST}/downloads/job-1/h-chr_20.zip/chr_20.zip"
    assert zip_result.downloadable
    assert not report.downloadable
    assert "no downloads left" in report.note
    respx.get(f"{API}/jobs/job-2").respond(200, json=cg3_job(7, files=[_file("chr_20.zip")]))
    (retired,) = await adapter.results(target("michigan", HOST), TOKEN, "job-2")
    assert not retired.downloadable
    assert "retention" in retired.note


def _result(name="chr_20.zip"):
    return RemoteResult(
        name=name, url=f"{HOST}/downloads/job-1/h/{name}", size=None, downloadable=True
    )


@pytest.mark.parametrize("aes", [False, True])
@respx.mock
async def test_download_follows_the_redirect_and_decrypts(adapter, aes):
    entries = {"chr20.dose.vcf.gz": b"dose" * 1000, "chr20.info.gz": b"info"}
    archive = encrypted_zip(entries, PASSWORD, aes=aes)
    first = respx.get(f"{HOST}/downloads/job-1/h/chr_20.zip").respond(
        302, headers={"location": "https://s3.example.org/bucket/chr_20.zip?X-Amz-Expires=300"}
    )
    store = respx.get("https://s3.example.org/bucket/chr_20.zip").respond(200, content=archive)
    data = await read_all(
        adapter.download(target("michigan", HOST), TOKEN, _result(), password=PASSWORD)
    )
    plain = zipfile.ZipFile(io.BytesIO(data))
    assert {i.filename: plain.read(i) for i in plain.infolist()} == entries
    assert not any(i.flag_bits & 1 for i in plain.infolist())  # no longer encrypted
    for call in (first.calls.last, store.calls.last):
        assert "x-auth-token" not in call.request.headers  # never sent, even to the object store


@respx.mock
async def test_download_errors(adapter):
    respx.get(f"{HOST}/downloads/job-1/h/chr_20.zip").respond(
        200, content=encrypted_zip({"a": b"1"}, "other")
    )
    with pytest.raises(ResultUnreadable, match="password"):
        await read_all(
            adapter.download(target("michigan", HOST), TOKEN, _result(), password=PASSWORD)
        )
    respx.get(f"{HOST}/downloads/job-1/h/chr_20.zip").respond(200, content=b"not a zip")
    with pytest.raises(ResultUnreadable, match="damaged"):
        await read_all(
            adapter.download(target("michigan", HOST), TOKEN, _result(), password=PASSWORD)
        )
    respx.get(f"{HOST}/downloads/job-1/h/chr_20.zip").respond(
        400, json={"message": "number of max downloads exceeded.", "success": False}
    )
    with pytest.raises(RemoteRejected, match="number of max downloads exceeded"):
        await read_all(
            adapter.download(target("michigan", HOST), TOKEN, _result(), password=PASSWORD)
        )
    respx.get(f"{HOST}/downloads/job-1/h/qc_report.txt").respond(200, content=b"report")
    assert (
        await read_all(adapter.download(target("michigan", HOST), TOKEN, _result("qc_report.txt")))
        == b"report"
    )
    gone = RemoteResult("x", None, None, False, "deleted")
    with pytest.raises(RemoteNotFound, match="deleted"):
        await read_all(adapter.download(target("michigan", HOST), TOKEN, gone))
    respx.get(f"{HOST}/downloads/job-1/h/chr_20.zip").mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(RemoteUnavailable):
        await read_all(
            adapter.download(target("michigan", HOST), TOKEN, _result(), password=PASSWORD)
        )


@respx.mock
async def test_submit_checks_the_token_before_uploading(adapter, valid_token):
    upload = respx.post(url__regex=rf"{API}/jobs/submit/.*").respond(
        200, json={"success": True, "id": "j"}
    )
    valid_token.respond(
        200, json={"valid": False, "message": "API Token was created by alice and expired on Mon."}
    )
    with pytest.raises(AuthFailed, match="expired"):
        await adapter.submit(
            target("michigan", HOST), TOKEN, job_spec([input_file("a.vcf.gz", b"x")])
        )
    assert upload.call_count == 0
    valid_token.respond(
        404, json={"message": "not here", "success": False}
    )  # no verify route: go on
    await adapter.submit(target("michigan", HOST), TOKEN, job_spec([input_file("a.vcf.gz", b"x")]))
    assert upload.call_count == 1


def test_api_root_accepts_a_base_url_with_or_without_api_v2():
    from job_processor.adapters.michigan import api_root

    assert api_root(target("michigan", HOST)) == API
    assert api_root(target("michigan", API + "/")) == API
    assert json.dumps(api_root(target("michigan", HOST, api_url=API)))
