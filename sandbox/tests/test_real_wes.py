"""The real WES servers fixture: sapporo at its root and under /ga4gh/wes/v1 running CWL with the
local cwltool, and wes-service. Skipped only when the servers are not installed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from sandbox.real_wes import WES_PREFIX

ECHO_CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
stdout: greeting.txt
inputs:
  message: {type: string, inputBinding: {position: 1}}
outputs:
  greeting: {type: stdout}
"""


def _wait_terminal(api_url: str, run_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = str(httpx.get(f"{api_url}/runs/{run_id}/status").json()["state"])
        if state in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def test_sapporo_serves_both_roots_and_runs_cwl_locally(real_wes_server, tmp_path: Path):
    node = real_wes_server("sapporo", url_prefix=WES_PREFIX)
    at_prefix = httpx.get(f"{node.base_url}{WES_PREFIX}/service-info").json()
    at_root = httpx.get(f"{node.base_url}/service-info").json()
    assert at_prefix == at_root
    assert list(at_root["workflow_type_versions"]) == ["CWL"]
    assert list(at_root["workflow_engine_versions"]) == ["cwltool"]
    workflow = tmp_path / "echo.cwl"
    workflow.write_text(ECHO_CWL)
    submitted = httpx.post(
        f"{node.api_url}/runs",
        data={
            "workflow_type": "CWL",
            "workflow_type_version": "v1.2",
            "workflow_engine": "cwltool",
            "workflow_url": workflow.as_uri(),
            "workflow_params": json.dumps({"message": "hello"}),
        },
    )
    assert submitted.status_code == 200, submitted.text
    run_id = submitted.json()["run_id"]
    assert _wait_terminal(node.api_url, run_id) == "COMPLETE"
    outputs = httpx.get(f"{node.api_url}/runs/{run_id}").json()["outputs"]
    greeting = next(o for o in outputs if o["file_name"] == "greeting.txt")
    assert httpx.get(greeting["file_url"]).text == "hello\n"


def test_sapporo_at_its_root_only(real_wes_server):
    node = real_wes_server("sapporo")
    assert node.api_url == node.base_url
    assert httpx.get(f"{node.base_url}/service-info").status_code == 200
    assert httpx.get(f"{node.base_url}{WES_PREFIX}/service-info").status_code == 404


def test_sapporo_refuses_a_run_without_an_engine(real_wes_server):
    node = real_wes_server("sapporo")
    refused = httpx.post(
        f"{node.api_url}/runs",
        data={"workflow_type": "CWL", "workflow_type_version": "v1.2", "workflow_url": "x.cwl"},
    )
    assert refused.status_code == 400
    assert set(refused.json()) == {"msg", "status_code"}


def test_wes_service_under_the_standard_prefix(real_wes_server):
    node = real_wes_server("wes-service")
    assert node.api_url.endswith(WES_PREFIX)
    info = httpx.get(f"{node.api_url}/service-info", timeout=30).json()
    assert "CWL" in info["workflow_type_versions"]
    assert "type" not in info  # no GA4GH service-info fields: clients must not need them
