"""WES simulator conformance for the four flavours (spec §2, §3), over real HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from sandbox.cloudgene.options import preset_panels
from sandbox.pytest_plugin import wait_for
from sandbox.testdata import make_vcf
from sandbox.wes.flavours import STARTER_KIT_SERVICE_INFO

PARAMS = {
    "input_vcf": "chr20.vcf.gz",
    "refpanel": "apps@1000g-phase-3-v5",
    "population": "eur",
    "password": "pw",
}


def _submit(url, *, params=PARAMS, attach=True, headers=None, **parts):
    data = {
        "workflow_type": "WDL",
        "workflow_type_version": "1.0",
        "workflow_url": "imputation.wdl",
        "workflow_params": json.dumps(params),
        "tags": json.dumps({"job": "fed-1"}),
        **parts,
    }
    files = [("workflow_attachment", ("chr20.vcf.gz", make_vcf()))] if attach else None
    return httpx.post(f"{url}/runs", data=data, files=files, headers=headers)


def _submit_typed(url, *, params=PARAMS, headers=None):
    """Multipart with each JSON part typed application/json, as DNAstack's server needs."""
    files = [
        ("workflow_params", (None, json.dumps(params), "application/json")),
        ("tags", (None, json.dumps({"job": "fed-1"}), "application/json")),
        ("workflow_attachment", ("chr20.vcf.gz", make_vcf())),
    ]
    data = {"workflow_type": "WDL", "workflow_type_version": "1.0", "workflow_url": "x.wdl"}
    return httpx.post(f"{url}/runs", data=data, files=files, headers=headers)


def _final(url, run_id, headers=None):
    terminal = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREPROCESSING_ERROR"}
    return wait_for(
        lambda: httpx.get(f"{url}/runs/{run_id}", headers=headers).json(),
        lambda b: b["state"] in terminal,
    )


def test_spec_service_info(sandbox_server):
    wes = sandbox_server("wes", flavour="spec")
    body = httpx.get(f"{wes.api_url}/service-info").json()
    assert {"id", "name", "type", "organization", "version"} <= set(body)
    assert body["type"] == {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
    assert body["workflow_type_versions"]["WDL"] == {"workflow_type_version": ["1.0"]}
    assert {
        "supported_wes_versions",
        "supported_filesystem_protocols",
        "workflow_engine_versions",
        "default_workflow_engine_parameters",
        "system_state_counts",
        "auth_instructions_url",
        "tags",
    } <= set(body)


def test_spec_service_info_publishes_its_panels_in_tags(sandbox_server):
    wes = sandbox_server("wes", flavour="spec", panels=preset_panels("afrigen"))
    tags = httpx.get(f"{wes.api_url}/service-info").json()["tags"]
    published = json.loads(tags["fedimpute.reference_panels"])
    assert [(p["id"], p["build"]) for p in published] == [
        ("h3africa-v6hc-s", "hg38"),
        ("1000g-phase-3-v5", "hg19"),
    ]
    assert published[0]["populations"] == ["afr", "mixed"]
    quiet = sandbox_server("wes", flavour="spec", publish_panels=False)
    assert httpx.get(f"{quiet.api_url}/service-info").json()["tags"] == {}
    # the vendor flavours publish none: their servers have no such tag
    workbench = sandbox_server("wes", flavour="dnastack-workbench")
    assert httpx.get(f"{workbench.api_url}/service-info").json()["tags"] == {}


def test_spec_run_lifecycle_outputs_tasks_and_paging(sandbox_server):
    wes = sandbox_server(
        "wes",
        flavour="spec",
        # Long enough that polling sees every state even on a loaded CI machine.
        timings={"queued_seconds": 0.8, "initializing_seconds": 0.8, "task_seconds": 0.05},
    )
    run_id = _submit(wes.api_url).json()["run_id"]
    seen = set()
    wait_for(
        lambda: httpx.get(f"{wes.api_url}/runs/{run_id}/status").json(),
        lambda b: seen.add(b["state"]) or b["state"] == "COMPLETE",
    )
    assert {"QUEUED", "INITIALIZING", "RUNNING", "COMPLETE"} <= seen
    log = httpx.get(f"{wes.api_url}/runs/{run_id}").json()
    assert log["request"]["workflow_params"] == PARAMS
    assert log["request"]["tags"] == {"job": "fed-1"}
    assert log["run_log"]["exit_code"] == 0
    assert log["task_logs_url"] == f"{wes.api_url}/runs/{run_id}/tasks"
    url = log["outputs"]["chr_20.zip"]
    assert urlparse(url).scheme == "http"
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(url).content))
    assert archive.read("chr20.info.gz", pwd=b"pw")
    tasks = httpx.get(f"{wes.api_url}/runs/{run_id}/tasks", params={"page_size": 2}).json()
    assert [t["name"] for t in tasks["task_logs"]] == [
        "input_validation",
        "quality_control",
    ]
    assert tasks["next_page_token"]
    one = httpx.get(f"{wes.api_url}/runs/{run_id}/tasks/{tasks['task_logs'][0]['id']}").json()
    assert one["exit_code"] == 0
    assert one["stdout"].endswith("/stdout")
    second = _submit(wes.api_url).json()["run_id"]
    page = httpx.get(f"{wes.api_url}/runs", params={"page_size": 1}).json()
    assert page["runs"][0]["run_id"] == second
    assert page["next_page_token"]
    last = httpx.get(
        f"{wes.api_url}/runs", params={"page_size": 1, "page_token": page["next_page_token"]}
    ).json()
    assert last["runs"][0]["run_id"] == run_id
    assert last["next_page_token"] is None  # as sapporo sends it (knob: last_page_token)
    assert set(last["runs"][0]) == {"run_id", "state", "start_time", "end_time", "tags"}


def test_spec_errors_cancel_and_failures(sandbox_server):
    wes = sandbox_server(
        "wes", flavour="spec", timings={"queued_seconds": 2.0, "canceling_seconds": 1.5}
    )
    missing = httpx.get(f"{wes.api_url}/runs/nope")
    assert (missing.status_code, missing.json()) == (
        404,
        {"msg": "Run nope not found.", "status_code": 404},
    )
    no_url = httpx.post(
        f"{wes.api_url}/runs", data={"workflow_type": "WDL", "workflow_type_version": "1.0"}
    )
    assert no_url.json() == {"msg": "Missing required field: workflow_url", "status_code": 400}
    sneaky = httpx.post(
        f"{wes.api_url}/runs",
        data={"workflow_type": "WDL", "workflow_type_version": "1.0", "workflow_url": "x"},
        files=[("workflow_attachment", ("../etc/passwd", b"x"))],
    )
    assert sneaky.status_code == 400
    assert sneaky.json()["status_code"] == 400
    run_id = _submit(wes.api_url).json()["run_id"]
    assert httpx.post(f"{wes.api_url}/runs/{run_id}/cancel").json() == {"run_id": run_id}
    assert httpx.get(f"{wes.api_url}/runs/{run_id}/status").json()["state"] == "CANCELING"
    assert _final(wes.api_url, run_id)["state"] == "CANCELED"
    bad = _submit(wes.api_url, params={**PARAMS, "input_vcf": "chr20.vcf.gz"}, attach=False)
    assert _final(wes.api_url, bad.json()["run_id"])["state"] == "SYSTEM_ERROR"
    invalid = httpx.post(
        f"{wes.api_url}/runs",
        data={
            "workflow_type": "WDL",
            "workflow_type_version": "1.0",
            "workflow_url": "x",
            "workflow_params": json.dumps(PARAMS),
        },
        files=[("workflow_attachment", ("chr20.vcf.gz", make_vcf(samples=3)))],
    )
    log = _final(wes.api_url, invalid.json()["run_id"])
    assert log["state"] == "EXECUTOR_ERROR"
    assert log["run_log"]["system_logs"] == ["At least 20 samples must be uploaded."]


def test_spec_bearer_auth_and_http_inputs(sandbox_server):
    wes = sandbox_server("wes", flavour="spec", tokens=["t0k"])
    assert httpx.get(f"{wes.api_url}/runs").json() == {
        "msg": "The request is unauthorized: a valid bearer token is required.",
        "status_code": 401,
    }
    auth = {"Authorization": "Bearer t0k"}
    source = sandbox_server("wes", flavour="spec")
    first = _submit(source.api_url).json()["run_id"]
    _final(source.api_url, first)
    # Any http(s) URL works as input; here the dose VCF is not a valid upload, so use the attachment route's file.
    served = httpx.get(f"{source.api_url}/runs/{first}").json()["outputs"]["qc_report.txt"]
    run = _submit(
        wes.api_url, params={**PARAMS, "input_vcf": served}, attach=False, headers=auth
    ).json()["run_id"]
    log = _final(wes.api_url, run, headers=auth)
    assert log["state"] == "EXECUTOR_ERROR"
    assert log["run_log"]["system_logs"] == ["No vcf.gz input files detected."]


def test_starter_kit_quirks(sandbox_server):
    # Long enough before the work starts that the first status read sees it on a loaded machine.
    wes = sandbox_server("wes", flavour="starter-kit", timings={"initializing_seconds": 0.8})
    info = httpx.get(f"{wes.api_url}/service-info")
    assert info.content == STARTER_KIT_SERVICE_INFO
    spring = httpx.post(
        f"{wes.api_url}/runs",
        data={"workflow_type": "WDL", "workflow_type_version": "1.0", "workflow_url": "x"},
    )
    assert spring.status_code == 400
    assert set(spring.json()) == {
        "timestamp",
        "status",
        "error",
        "path",
    }
    conflict = httpx.post(
        f"{wes.api_url}/runs",
        data={
            "workflow_type": "CWL",
            "workflow_type_version": "v1.0",
            "workflow_url": "x",
            "workflow_params": "{}",
        },
    )
    assert conflict.status_code == 409
    assert {k: v for k, v in conflict.json().items() if k != "timestamp"} == {
        "status_code": 409,
        "error": "Conflict",
        "msg": "Could not register new WorkflowRun",
    }
    vcf = Path(wes.simulator.info["prefix"])  # placeholder to keep names short below
    del vcf
    data_dir = httpx.get(f"{wes.api_url}/runs").json()
    assert data_dir == {"runs": []}
    source = sandbox_server("wes", flavour="spec")
    src_run = _submit(source.api_url, params={**PARAMS, "mode": "qc_only"}).json()["run_id"]
    _final(source.api_url, src_run)
    # The Starter Kit reads inputs by URL only: serve a VCF from a local file.
    tmp = Path(__file__).parent / ".starter-kit-input.vcf.gz"
    tmp.write_bytes(make_vcf())

    def nextflow(url):
        return httpx.post(
            f"{wes.api_url}/runs",
            data={
                "workflow_type": "NEXTFLOW",
                "workflow_type_version": "21.04.0",
                "workflow_url": url,
                "workflow_params": json.dumps({"input": tmp.as_uri(), "password": "pw"}),
            },
        ).json()["run_id"]

    try:
        run_id = nextflow("https://github.com/grbot/flagstat")
        assert httpx.get(f"{wes.api_url}/runs/{run_id}/status").json()["state"] == "RUNNING"
        assert httpx.post(f"{wes.api_url}/runs/{run_id}/cancel").content == b""
        seen = set()
        log = wait_for(
            lambda: httpx.get(f"{wes.api_url}/runs/{run_id}").json(),
            lambda b: seen.add(b["state"]) or b["state"] not in ("RUNNING",),
        )
        elsewhere = _final(wes.api_url, nextflow("https://gitlab.com/grbot/flagstat"))
    finally:
        tmp.unlink()
    assert seen <= {"RUNNING", "COMPLETE"}  # no QUEUED/INITIALIZING: state from `nextflow log`
    assert elsewhere["state"] == "EXECUTOR_ERROR"  # only GitHub workflow URLs run
    assert log["state"] == "COMPLETE"
    assert "task_logs_url" not in log
    output = urlparse(log["outputs"]["chr_20.zip"])
    assert output.scheme == "file"
    assert Path(output.path).exists()
    assert "/ga4gh/wes/v1/logs/nextflow/stdout/" in log["run_log"]["stdout"]
    assert httpx.get(log["run_log"]["stdout"]).status_code == 200
    assert httpx.get(f"{wes.api_url}/runs").json() == {
        "runs": [{"run_id": run_id, "state": "COMPLETE"}]
    }
    assert httpx.get(f"{wes.api_url}/runs/{run_id}/tasks").status_code == 404
    missing = httpx.get(f"{wes.api_url}/runs/nope").json()
    assert (missing["status_code"], missing["msg"]) == (404, "No WES Run by the id: nope")


def test_dnastack_cromwell(sandbox_server):
    wes = sandbox_server("wes", flavour="dnastack-cromwell")
    info = httpx.get(f"{wes.api_url}/service-info").json()
    assert "auth_instruction_url" in info
    assert "auth_instructions_url" not in info
    assert "system_state_counts" not in info
    denied = httpx.get(f"{wes.api_url}/runs")
    assert (denied.status_code, denied.content, denied.headers["www-authenticate"]) == (
        401,
        b"",
        "Bearer",
    )
    auth = {"Authorization": "Bearer dnastack-token"}
    missing = httpx.get(f"{wes.api_url}/runs/x", headers=auth).json()
    assert missing == {"msg": "Workflow execution with run_id x does not exist.", "error_code": 404}
    plain = _submit(wes.api_url, headers=auth)
    assert plain.status_code == 415  # JSON parts without Content-Type: application/json
    assert set(plain.json()) == {"timestamp", "status", "error", "path"}
    run_id = _submit_typed(wes.api_url, headers=auth).json()["run_id"]
    assert _final(wes.api_url, run_id, headers=auth)["state"] == "COMPLETE"


def test_dnastack_workbench(sandbox_server):
    wes = sandbox_server("wes", flavour="dnastack-workbench", namespace="ns1")
    assert wes.api_url.endswith("/ns1/ga4gh/wes/v1")
    bad = httpx.post(
        f"{wes.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    token = httpx.post(
        f"{wes.base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "resource": wes.api_url,
        },
    ).json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert (
        httpx.post(f"{wes.api_url}/runs", data={"workflow_url": "x"}, headers=auth).status_code
        == 415
    )
    tmp = Path(__file__).parent / ".workbench-input.vcf.gz"
    tmp.write_bytes(make_vcf())
    try:
        submitted = httpx.post(
            f"{wes.api_url}/runs",
            headers=auth,
            json={
                "workflow_url": "imputation",
                "workflow_type": "WDL",
                "workflow_type_version": "1.0",
                "workflow_params": {"vcf": tmp.as_uri(), "password": "pw"},
            },
        ).json()
        assert submitted["state"] == "PREPROCESSING"
        log = _final(wes.api_url, submitted["run_id"], headers=auth)
    finally:
        tmp.unlink()
    assert log["state"] == "COMPLETE"
    assert log["engine_id"] == "sandbox-engine"
    listing = httpx.get(f"{wes.api_url}/runs", headers=auth).json()
    assert listing["pagination"]["total_elements"] == 1
    assert listing["runs"][0]["workflow_url"] == "imputation"
    tasks = httpx.get(f"{wes.api_url}/runs/{submitted['run_id']}/tasks", headers=auth).json()
    assert tasks["tasks"][0]["state"] == "COMPLETE"


def test_every_spec_error_is_msg_and_status_code(sandbox_server):
    wes = sandbox_server("wes", flavour="spec")
    run_id = _submit(wes.api_url).json()["run_id"]
    for response, status in (
        (httpx.get(f"{wes.api_url}/nowhere"), 404),
        (httpx.delete(f"{wes.api_url}/runs"), 405),
        (httpx.get(f"{wes.api_url}/runs/{run_id}/tasks", params={"page_token": "%%%"}), 400),
        (httpx.get(f"{wes.api_url}/runs/{run_id}/tasks", params={"page_size": "x"}), 400),
        (httpx.get(f"{wes.api_url}/runs", params={"page_size": "0"}), 400),
    ):
        assert response.status_code == status, response.text
        assert set(response.json()) == {"msg", "status_code"}
        assert response.json()["status_code"] == status


def test_java_flavours_answer_unknown_routes_like_spring(sandbox_server):
    for flavour in ("starter-kit", "dnastack-cromwell"):
        wes = sandbox_server("wes", flavour=flavour)
        response = httpx.get(f"{wes.api_url}/nowhere")
        assert response.status_code == 404
        assert set(response.json()) == {"timestamp", "status", "error", "path"}


@pytest.mark.parametrize(("knob", "expected"), [("empty", ""), ("null", None), ("absent", "-")])
def test_last_page_token_knob(sandbox_server, knob, expected):
    wes = sandbox_server("wes", flavour="spec", last_page_token=knob)
    _submit(wes.api_url)
    page = httpx.get(f"{wes.api_url}/runs").json()
    assert page.get("next_page_token", "-") == expected


@pytest.mark.parametrize("detour", ["PAUSED", "UNKNOWN"])
def test_runs_can_pass_through_paused_and_unknown(sandbox_server, detour):
    wes = sandbox_server("wes", flavour="spec", faults={"run_detour": detour})
    run_id = _submit(wes.api_url).json()["run_id"]
    seen = set()
    wait_for(
        lambda: httpx.get(f"{wes.api_url}/runs/{run_id}/status").json(),
        lambda b: seen.add(b["state"]) or b["state"] == "COMPLETE",
    )
    assert {detour, "RUNNING", "COMPLETE"} <= seen


def test_runs_can_be_preempted(sandbox_server):
    wes = sandbox_server("wes", flavour="spec", faults={"run_detour": "PREEMPTED"})
    log = _final_any(wes.api_url, _submit(wes.api_url).json()["run_id"])
    assert log["state"] == "PREEMPTED"
    assert log["run_log"]["system_logs"]


def _final_any(url, run_id):
    return wait_for(
        lambda: httpx.get(f"{url}/runs/{run_id}").json(),
        lambda b: b["state"] in {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "PREEMPTED"},
    )
