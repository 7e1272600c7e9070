"""The WES adapter against recorded shapes (respx): every state, error shape, paging variant,
output shape and quirk of specs/external-protocols.md §2-3, and the profile encodings."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest
import respx

from job_processor.adapters.base import (
    AuthFailed,
    Credentials,
    NotSubmittable,
    RemoteNotFound,
    RemoteRejected,
    RemoteResult,
    RemoteUnavailable,
)
from job_processor.adapters.ga4gh_wes import (
    STATE_MAP,
    WesAdapter,
    build_params,
    output_entries,
    run_status,
)
from service_registry.workflows.templates import TEMPLATES

from .helpers import PASSWORD, input_file, job_spec, read_all, target, token

NODE = "http://node.example.org:6000"
API = f"{NODE}/ga4gh/wes/v1"
NONE = Credentials.none()
SANDBOX = TEMPLATES["sandbox-imputation"].profile
NODE_PROFILE = TEMPLATES["fedimpute-imputation-cwl"].profile | {
    "workflow_url": "http://node.example.org:6000/workflows/fedimpute-imputation/1.0.0/imputation.cwl"
}


@pytest.fixture
async def adapter():
    async with httpx.AsyncClient(timeout=5) as client:
        yield WesAdapter(client)


def service(profile=SANDBOX, **changes):
    return target("ga4gh_wes", NODE, workflow_profile=profile, **changes)


def linked(*names):
    return [input_file(n, b"x", url=f"https://files.example.org/s/{n}?sig=abc") for n in names]


# ---------------------------------------------------------------------------------- states
@pytest.mark.parametrize(
    ("state", "mapped"),
    [
        ("UNKNOWN", "unknown"),
        ("QUEUED", "queued"),
        ("INITIALIZING", "queued"),
        ("RUNNING", "running"),
        ("PAUSED", "paused"),
        ("COMPLETE", "completed"),
        ("EXECUTOR_ERROR", "failed"),
        ("SYSTEM_ERROR", "failed"),
        ("CANCELED", "cancelled"),
        ("CANCELING", "running"),
        ("PREEMPTED", "failed"),
        ("PREPROCESSING", "queued"),
        ("COMPLETE_WITH_ERRORS", "failed"),
        ("PREPROCESSING_ERROR", "failed"),
        ("NOT_PROCESSED", "cancelled"),
        ("SOMETHING_NEW", "unknown"),
        (None, "unknown"),
        (7, "unknown"),
    ],
)
def test_every_state_is_mapped(state, mapped):
    status = run_status({"run_id": "r", "state": state})
    assert status.state == mapped
    if mapped in ("failed", "paused", "unknown") or state == "CANCELING":
        assert status.message
    if state == "SOMETHING_NEW":
        assert "SOMETHING_NEW" in status.message


def test_the_state_table_covers_the_spec_and_workbench_enums():
    wes_11 = "UNKNOWN QUEUED INITIALIZING RUNNING PAUSED COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELED CANCELING PREEMPTED"
    workbench = "PREPROCESSING COMPLETE_WITH_ERRORS PREPROCESSING_ERROR NOT_PROCESSED"
    assert set(STATE_MAP) == set(wes_11.split()) | set(workbench.split())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "state": "EXECUTOR_ERROR",
                "run_log": {"system_logs": ["first", "Your input data is unphased."]},
            },
            "Your input data is unphased.",
        ),
        (
            {"state": "EXECUTOR_ERROR", "errors": ["Could not download https://x"], "run_log": {}},
            "Could not download https://x",
        ),
        (
            {
                "state": "EXECUTOR_ERROR",
                "run_log": {"stderr": "INFO start\nERROR: target on hg19, panel on hg38\nmore"},
            },
            "ERROR: target on hg19, panel on hg38",
        ),
        (
            {
                "state": "EXECUTOR_ERROR",
                "run_log": {"stderr": "http://node/logs/stderr/r", "exit_code": 2},
            },
            "The run ended in state EXECUTOR_ERROR. (exit code 2)",
        ),
        (
            {
                "state": "SYSTEM_ERROR",
                "task_logs": [{"name": "qc", "system_logs": ["node out of disk"]}],
            },
            "node out of disk",
        ),
        (
            {"state": "PREEMPTED"},
            "The node preempted the run (its resources were reclaimed); retry the job.",
        ),
    ],
)
def test_failure_text_comes_from_the_node(body, message):
    assert run_status(body).message == message


def test_steps_from_task_logs_including_running_starter_kit_entries():
    status = run_status(
        {
            "state": "RUNNING",
            "task_logs": [
                {"name": "input_validation", "exit_code": 0},
                {"name": "qc", "exit_code": 1},
                {"cmd": ["x"]},  # a Starter Kit task still running: no name, no end
                {"task_id": "t4", "state": "RUNNING"},  # Workbench
            ],
        }
    )
    assert status.steps == [
        "input_validation: done",
        "qc: failed (exit code 1)",
        "task: running",
        "t4: running",
    ]


# ---------------------------------------------------------------------------------- profile
def test_the_imputation_node_profile_builds_its_cwl_inputs():
    spec = job_spec(
        linked("chr20.vcf.gz", "chr21.vcf.gz"),
        name="My study!",
        population="afr",
        panel_location="file:///data/panels/sim-ooa",
    )
    params = build_params(NODE_PROFILE, spec)
    assert params == {
        "target_vcfs": [
            {"class": "File", "location": "https://files.example.org/s/chr20.vcf.gz?sig=abc"},
            {"class": "File", "location": "https://files.example.org/s/chr21.vcf.gz?sig=abc"},
        ],
        "panel": {"class": "Directory", "location": "file:///data/panels/sim-ooa"},
        "build": "hg19",
        "population": "afr",
        "r2_filter": 0.3,
        "output_prefix": "My_study",
        "threads": 1,
        "memory_gb": 2,
    }
    with pytest.raises(NotSubmittable, match="no location"):
        build_params(NODE_PROFILE, job_spec(spec.inputs))
    with pytest.raises(NotSubmittable, match="QC-only"):
        build_params(NODE_PROFILE, job_spec(spec.inputs, mode="qc_only", panel_location="x"))


def test_encodings_and_translation_tables():
    files = {"from": "input_files"}
    one, two = linked("a.vcf.gz"), linked("a.vcf.gz", "b.vcf.gz")
    assert build_params({"params": {"i": files | {"as": "url"}}}, job_spec(one)) == {
        "i": one[0].url
    }
    assert build_params({"params": {"i": files | {"as": "url_string"}}}, job_spec(two)) == {
        "i": f"{two[0].url} {two[1].url}"
    }
    assert build_params({"params": {"i": files | {"as": "cwl_file"}}}, job_spec(one)) == {
        "i": {"class": "File", "location": one[0].url}
    }
    with pytest.raises(NotSubmittable, match="one input file, not 2"):
        build_params({"params": {"i": files | {"as": "url"}}}, job_spec(two))
    with pytest.raises(NotSubmittable, match="no link"):
        build_params(
            {"params": {"i": files | {"as": "url_list"}}}, job_spec([input_file("a.vcf.gz", b"x")])
        )
    attach = build_params(
        {"input_delivery": "attachment", "params": {"i": files | {"as": "url_list"}}}, job_spec(two)
    )
    assert attach == {"i": ["a.vcf.gz", "b.vcf.gz"]}
    scalars = {
        "i": files | {"as": "url_list"},
        "r2": {"from": "r2_filter", "as": "integer"},
        "flag": {
            "from": "mode",
            "as": "boolean",
            "values": {"imputation": "true", "qc_only": "false"},
        },
        "ph": {"from": "phasing", "values": {"eagle": "eagle5"}},
        "pop": {"from": "population"},
        "pw": {"from": "password"},
        "const": {"value": "x"},
    }
    built = build_params({"params": scalars}, job_spec(one, r2_filter=0.0, population=None))
    assert built == {
        "i": [one[0].url],
        "r2": 0,
        "flag": True,
        "ph": "eagle5",
        "pw": PASSWORD,
        "const": "x",
    }
    with pytest.raises(NotSubmittable, match="does not support ph 'beagle'"):
        build_params({"params": scalars}, job_spec(one, phasing="beagle"))
    with pytest.raises(NotSubmittable, match="unknown job field"):
        build_params(
            {"params": {"i": files | {"as": "url"}, "x": {"from": "nonsense"}}}, job_spec(one)
        )


@respx.mock
async def test_submit_multipart_shape(adapter):
    route = respx.post(f"{API}/runs").respond(200, json={"run_id": "r1"})
    spec = job_spec(linked("chr20.vcf.gz"), panel_location="file:///p")
    profile = NODE_PROFILE | {"workflow_engine_version": "3.1", "tags": {"site": "node-1"}}
    submitted = await adapter.submit(service(profile), token("user-token"), spec)
    assert submitted.remote_id == "r1"
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer user-token"
    parts = _parts(request)
    assert parts["workflow_type"] == (None, "CWL")
    assert parts["workflow_type_version"] == (None, "v1.2")
    assert parts["workflow_engine"] == (None, "cwltool")
    assert parts["workflow_engine_version"] == (None, "3.1")
    assert parts["workflow_url"][1] == NODE_PROFILE["workflow_url"]
    assert parts["workflow_params"][0] == "application/json"
    assert json.loads(parts["workflow_params"][1])["build"] == "hg19"
    tags = json.loads(parts["tags"][1])
    assert tags == {"site": "node-1", "fedimpute_job": spec.tag, "fedimpute_job_name": "My study"}
    assert "workflow_engine_parameters" not in parts  # the imputation node refuses any
    assert "workflow_attachment" not in parts


@respx.mock
async def test_attachments_are_streamed_parts(adapter):
    route = respx.post(f"{API}/runs").respond(200, json={"run_id": "r2"})
    data = b"\x1f\x8b" + bytes(range(256)) * 10
    spec = job_spec(
        [input_file("../../etc/chr20.vcf.gz", data, chunk=100), input_file("chr20.vcf.gz", b"y")]
    )
    profile = SANDBOX | {
        "input_delivery": "attachment",
        "workflow_engine_parameters": {"--foo": "1"},
    }
    await adapter.submit(service(profile), NONE, spec)
    request = route.calls.last.request
    assert "authorization" not in request.headers
    assert int(request.headers["content-length"]) == len(request.content)
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    )
    attachments = [
        (p.get_filename(), p.get_payload(decode=True))
        for p in message.iter_parts()
        if p.get_filename()
    ]
    assert attachments == [("chr20.vcf.gz", data), ("2_chr20.vcf.gz", b"y")]
    params = json.loads(_parts(request)["workflow_params"][1])
    assert params["input_vcf"] == ["chr20.vcf.gz", "2_chr20.vcf.gz"]
    assert json.loads(_parts(request)["workflow_engine_parameters"][1]) == {"--foo": "1"}


def _parts(request):
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    )
    return {
        p.get_param("name", header="content-disposition"): (
            p.get_content_type() if p["content-type"] else None,
            p.get_payload(decode=True).decode(errors="replace"),
        )
        for p in message.iter_parts()
    }


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (
            400,
            {"msg": "Invalid workflow_engine: None", "status_code": 400},
            RemoteRejected,
            "Invalid workflow_engine",
        ),
        (400, {"msg": "bad", "error_code": 400}, RemoteRejected, "bad"),  # DNAstack cromwell-wes
        (
            400,
            {
                "type": "about:blank",
                "title": "Bad Request",
                "detail": "workflow_params is not valid JSON",
                "status": 400,
            },
            RemoteRejected,
            "workflow_params is not valid JSON",
        ),
        (
            400,
            {
                "timestamp": "2026-01-01T00:00:00.000+00:00",
                "status": 400,
                "error": "Bad Request",
                "path": "/ga4gh/wes/v1/runs",
            },
            RemoteRejected,
            "Bad Request",
        ),
        (
            409,
            {
                "timestamp": "t",
                "status_code": 409,
                "error": "Conflict",
                "msg": "Could not register new WorkflowRun",
            },
            RemoteRejected,
            "Could not register new WorkflowRun",
        ),
        (415, {"msg": "Unsupported Media Type", "status_code": 415}, RemoteRejected, "Unsupported"),
        (401, b"", AuthFailed, "401"),
        (403, {"msg": "Access denied", "status_code": 403}, AuthFailed, "Access denied"),
        (
            500,
            {
                "type": "about:blank",
                "title": "Internal Server Error",
                "detail": "boom",
                "status": 500,
            },
            RemoteUnavailable,
            "boom",
        ),
        (502, b"<html>bad gateway</html>", RemoteUnavailable, "502"),
        (200, b'{"run_id": ', RemoteUnavailable, "malformed JSON"),
        (200, {"id": "x"}, RemoteUnavailable, "without a run_id"),
    ],
)
@respx.mock
async def test_submit_error_shapes(adapter, status, body, error, text):
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    respx.post(f"{API}/runs").respond(status, **kwargs)
    with pytest.raises(error, match=text) as caught:
        await adapter.submit(service(), NONE, job_spec(linked("a.vcf.gz")))
    if status == 409:
        assert caught.value.status_code == 409


async def test_no_profile_is_not_submittable(adapter):
    with pytest.raises(NotSubmittable, match="no workflow profile"):
        await adapter.submit(service(None), NONE, job_spec(linked("a.vcf.gz")))


# ---------------------------------------------------------------------------------- find / paging
@pytest.mark.parametrize("last", ["", None, "absent"])
@respx.mock
async def test_find_pages_until_the_last_page_however_it_is_marked(adapter, last):
    spec = job_spec(linked("a.vcf.gz"))
    last_page = {
        "runs": [{"run_id": "mine", "state": "QUEUED", "tags": {"fedimpute_job": spec.tag}}]
    }
    if last != "absent":
        last_page["next_page_token"] = last
    route = respx.get(f"{API}/runs").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "runs": [{"run_id": "other", "state": "COMPLETE", "tags": {}}],
                    "next_page_token": "p2",
                },
            ),
            httpx.Response(200, json=last_page),
        ]
    )
    assert (await adapter.find(service(), NONE, spec)).remote_id == "mine"
    assert route.calls[1].request.url.params["page_token"] == "p2"
    empty = dict(last_page, runs=[])
    respx.get(f"{API}/runs").respond(200, json=empty)
    assert await adapter.find(service(), NONE, spec) is None


@respx.mock
async def test_find_without_tags_reads_run_logs_and_stops_on_a_repeated_token(adapter):
    spec = job_spec(linked("a.vcf.gz"))
    respx.get(f"{API}/runs").respond(
        200,
        json={
            "workflows": [
                {"run_id": "a", "state": "COMPLETE"},
                {"run_id": "b", "state": "RUNNING"},
            ],
            "next_page_token": "same",
        },
    )
    respx.get(f"{API}/runs/a").respond(
        200, json={"run_id": "a", "request": {"tags": {"fedimpute_job": "fedimpute-other"}}}
    )
    respx.get(f"{API}/runs/b").respond(
        200, json={"run_id": "b", "request": {"tags": json.dumps({"fedimpute_job": spec.tag})}}
    )
    assert (await adapter.find(service(), NONE, spec)).remote_id == "b"


# ---------------------------------------------------------------------------------- status / cancel
@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(404, json={"msg": "Run x not found.", "status_code": 404}), RemoteNotFound),
        (
            httpx.Response(
                404,
                json={
                    "timestamp": "t",
                    "status_code": 404,
                    "error": "Not Found",
                    "msg": "No WES Run by the id: x",
                },
            ),
            RemoteNotFound,
        ),
        (httpx.Response(401), AuthFailed),
        (httpx.Response(500, json={"msg": "boom", "status_code": 500}), RemoteUnavailable),
        (httpx.Response(429), RemoteUnavailable),
        (httpx.Response(200, content=b"<html>"), RemoteUnavailable),
        (httpx.Response(200, json=["not", "an", "object"]), RemoteUnavailable),
        (httpx.ConnectError("refused"), RemoteUnavailable),
        (httpx.ReadTimeout("slow"), RemoteUnavailable),
    ],
)
@respx.mock
async def test_status_errors(adapter, answer, error):
    route = respx.get(f"{API}/runs/x")
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    with pytest.raises(error):
        await adapter.status(service(), NONE, "x")


@respx.mock
async def test_cancel_reads_the_state_back(adapter):
    cancel = respx.post(f"{API}/runs/r/cancel")
    log = respx.get(f"{API}/runs/r")
    cancel.respond(200, json={"run_id": "r"})
    log.respond(200, json={"run_id": "r", "state": "CANCELING"})
    assert (await adapter.cancel(service(), NONE, "r")).ok
    cancel.respond(200, content=b"")  # the Starter Kit's `return null;`
    log.respond(200, json={"run_id": "r", "state": "RUNNING"})
    ignored = await adapter.cancel(service(), NONE, "r")
    assert not ignored.ok
    assert "does not cancel runs" in ignored.message
    cancel.respond(200, json={"run_id": "r"})  # wes-service: acknowledged, still running
    acknowledged = await adapter.cancel(service(), NONE, "r")
    assert not acknowledged.ok
    assert "may ask again" in acknowledged.message
    log.mock(
        side_effect=[
            httpx.Response(200, json={"run_id": "r", "state": s})
            for s in ("RUNNING", "RUNNING", "CANCELING")
        ]
    )
    assert (await adapter.cancel(service(), NONE, "r")).ok  # sapporo cancels after answering
    cancel.respond(404, json={"msg": "gone", "status_code": 404})
    with pytest.raises(RemoteNotFound):
        await adapter.cancel(service(), NONE, "r")


# ---------------------------------------------------------------------------------- outputs
def test_output_shapes():
    assert output_entries({"a.txt": "http://n/a.txt", "b": "file:///w/b"}) == [
        ("a.txt", "http://n/a.txt", None),
        ("b", "file:///w/b", None),
    ]
    assert output_entries([{"file_name": "x.vcf.gz", "file_url": "http://n/x"}, {"bad": 1}]) == [
        ("x.vcf.gz", "http://n/x", None)
    ]
    cwl = {
        "imputed_vcfs": [
            {
                "class": "File",
                "location": "file:///o/s.20.dose.vcf.gz",
                "basename": "s.20.dose.vcf.gz",
                "size": 10,
                "secondaryFiles": [
                    {
                        "class": "File",
                        "location": "file:///o/s.20.dose.vcf.gz.tbi",
                        "basename": "s.20.dose.vcf.gz.tbi",
                    }
                ],
            }
        ],
        "logs": {"class": "Directory", "listing": [{"class": "File", "path": "/o/logs/b.log"}]},
        "none": None,
    }
    assert output_entries(cwl) == [
        ("s.20.dose.vcf.gz", "file:///o/s.20.dose.vcf.gz", 10),
        ("s.20.dose.vcf.gz.tbi", "file:///o/s.20.dose.vcf.gz.tbi", None),
        ("logs", "/o/logs/b.log", None),
    ]
    assert output_entries(None) == []
    assert output_entries("nonsense") == []


@respx.mock
async def test_results_mark_what_stays_on_the_node(adapter):
    respx.get(f"{API}/runs/r").respond(
        200,
        json={
            "run_id": "r",
            "state": "COMPLETE",
            "outputs": {
                "chr_20.zip": f"{API}/runs/r/outputs/chr_20.zip",
                "flagstat": "file:///opt/ga4gh-starter-kit-wes/wes_runs/1e/flagstat",
                "relative": "/ga4gh/wes/v1/runs/r/outputs/rel.txt",
                "remote": "s3://bucket/key",
            },
        },
    )
    results = {r.name: r for r in await adapter.results(service(), NONE, "r")}
    assert results["chr_20.zip"].downloadable
    assert not results["flagstat"].downloadable
    assert results["flagstat"].note.startswith("stays on the node")
    assert results["relative"].url == f"{API}/runs/r/outputs/rel.txt"
    assert not results["remote"].downloadable
    assert "s3" in results["remote"].note


@respx.mock
async def test_downloads_send_the_token_only_to_the_node(adapter):
    own = respx.get(f"{API}/runs/r/outputs/a.txt").respond(200, content=b"mine")
    other = respx.get("https://storage.example.org/a.txt").respond(200, content=b"theirs")
    creds = token("secret-token")
    on_node = RemoteResult("a.txt", f"{API}/runs/r/outputs/a.txt", None, True)
    elsewhere = RemoteResult("b.txt", "https://storage.example.org/a.txt", None, True)
    assert await read_all(adapter.download(service(), creds, on_node)) == b"mine"
    assert own.calls.last.request.headers["authorization"] == "Bearer secret-token"
    assert await read_all(adapter.download(service(), creds, elsewhere)) == b"theirs"
    assert "authorization" not in other.calls.last.request.headers
    with pytest.raises(RemoteNotFound, match="stays on the node"):
        await read_all(
            adapter.download(
                service(), creds, RemoteResult("f", "file:///x", None, False, "stays on the node")
            )
        )
    respx.get(f"{API}/runs/r/outputs/gone").respond(
        404, json={"msg": "Output gone not found", "status_code": 404}
    )
    with pytest.raises(RemoteNotFound, match="Output gone not found"):
        await read_all(
            adapter.download(
                service(), creds, RemoteResult("gone", f"{API}/runs/r/outputs/gone", None, True)
            )
        )


@respx.mock
async def test_verify_credentials(adapter):
    runs = respx.get(f"{API}/runs")
    runs.respond(200, json={"runs": []})
    assert (
        await adapter.verify_credentials(service(), NONE)
    ).message == "The node answers without credentials."
    assert (await adapter.verify_credentials(service(), token("t"))).ok
    assert runs.calls.last.request.url.params["page_size"] == "1"
    runs.respond(401, json={"msg": "The request is unauthorized", "status_code": 401})
    check = await adapter.verify_credentials(service(), token("t"))
    assert not check.ok
    assert "unauthorized" in check.message
    runs.respond(503)
    with pytest.raises(RemoteUnavailable):
        await adapter.verify_credentials(service(), token("t"))


def test_api_root_from_the_registry():
    adapter = WesAdapter(httpx.AsyncClient())
    assert adapter.api_root(service()) == API
    assert adapter.api_root(service(api_url=API + "/")) == API
    # sapporo without --url-prefix answers at its root: the registry's api_url says so
    assert (
        adapter.api_root(target("ga4gh_wes", "http://sapporo:1122", api_url="http://sapporo:1122"))
        == "http://sapporo:1122"
    )
    assert adapter.api_root(target("ga4gh_wes", API)) == API


def test_signed_link_signatures_never_reach_a_message():
    body = {
        "state": "SYSTEM_ERROR",
        "run_log": {
            "system_logs": [
                "Could not download https://files.example.org/s/1?X-Signature=abc&exp=1: 403"
            ]
        },
    }
    assert run_status(body).message == "Could not download https://files.example.org/s/1?… 403"
