"""Every fault knob, set at start and at run time, and the one-call reset."""

from __future__ import annotations

import argparse
import json
import time

import httpx
import pytest

from sandbox.__main__ import _parser, build_options
from sandbox.pytest_plugin import wait_for
from sandbox.testdata import make_vcf


def test_latency_fixed_and_random(michigan):
    counters = f"{michigan.api_url}/server/counters"
    michigan.admin.set(latency_ms=200)
    started = time.monotonic()
    httpx.get(counters)
    assert time.monotonic() - started >= 0.2
    michigan.admin.set(latency_ms=50, latency_max_ms=120)
    started = time.monotonic()
    httpx.get(counters)
    assert time.monotonic() - started >= 0.05
    michigan.admin.reset()


def test_error_rate_answers_proxy_errors_but_not_admin(michigan):
    michigan.admin.set(error_rate=1.0, error_statuses=[502])
    response = httpx.get(f"{michigan.api_url}/server/counters")
    assert response.status_code == 502
    assert "<title>502 Bad Gateway</title>" in response.text
    assert httpx.get(f"{michigan.base_url}/_sandbox/faults").status_code == 200
    assert michigan.admin.reset()["error_rate"] == 0
    assert httpx.get(f"{michigan.api_url}/server/counters").status_code == 200


def test_malformed_json(michigan):
    michigan.admin.set(malformed_json=True)
    response = httpx.get(f"{michigan.api_url}/server/counters")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    michigan.admin.reset()


def test_refuse_outage_closes_the_port_and_comes_back(michigan):
    michigan.admin.set(outage="refuse")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{michigan.api_url}/server/counters")
    michigan.admin.reset()
    assert httpx.get(f"{michigan.api_url}/server/counters").status_code == 200
    michigan.admin.set(outage="refuse", outage_seconds=0.3)
    time.sleep(0.6)
    assert httpx.get(f"{michigan.api_url}/server/counters").status_code == 200
    assert michigan.admin.get()["outage"] == "none"


def test_hang_outage_times_out(michigan):
    michigan.admin.set(outage="hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{michigan.api_url}/server/counters", timeout=0.3)
    michigan.admin.reset()
    assert httpx.get(f"{michigan.api_url}/server/counters").status_code == 200


def test_expired_tokens(michigan, sandbox_server):
    michigan.admin.set(expired_tokens=True)
    token = michigan.users[0].token
    assert httpx.get(f"{michigan.api_url}/jobs", headers={"X-Auth-Token": token}).status_code == 401
    assert (
        httpx.post(f"{michigan.api_url}/tokens/verify", data={"token": token}).json()["valid"]
        is False
    )
    michigan.admin.reset()
    wes = sandbox_server("wes", flavour="dnastack-cromwell", faults={"expired_tokens": True})
    assert (
        httpx.get(
            f"{wes.api_url}/runs", headers={"Authorization": "Bearer dnastack-token"}
        ).status_code
        == 401
    )


def test_fail_at_step_and_stuck_jobs(michigan, alice):
    michigan.admin.set(fail_at_step="qc")
    data = {"refpanel": "apps@1000g-phase-3-v5", "population": "eur"}
    job_id = alice.post(
        "/api/v2/jobs/submit/imputationserver2",
        files=[("files", ("chr20.vcf.gz", make_vcf()))],
        data=data,
    ).json()["id"]
    body = wait_for(
        lambda: alice.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: b["state"] == 5
    )
    assert body["steps"][-1]["name"] == "Quality Control"
    assert body["steps"][-1]["logMessages"][-1]["type"] == 1
    michigan.admin.set(fail_at_step=None, stuck_jobs=True)
    job_id = alice.post(
        "/api/v2/jobs/submit/imputationserver2",
        files=[("files", ("chr20.vcf.gz", make_vcf()))],
        data=data,
    ).json()["id"]
    wait_for(
        lambda: alice.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: len(b["steps"]) == 3
    )
    time.sleep(0.3)
    assert alice.get(f"/api/v2/jobs/{job_id}/status").json()["state"] == 2
    michigan.admin.reset()
    assert (
        wait_for(
            lambda: alice.get(f"/api/v2/jobs/{job_id}/status").json(), lambda b: b["state"] == 4
        )["state"]
        == 4
    )


def test_wes_fault_fail_modes(sandbox_server):
    wes = sandbox_server(
        "wes", flavour="spec", faults={"fail_at_step": "imputation", "fail_mode": "dead"}
    )
    files = [("workflow_attachment", ("chr20.vcf.gz", make_vcf()))]
    data = {
        "workflow_type": "WDL",
        "workflow_type_version": "1.0",
        "workflow_url": "x",
        "workflow_params": '{"vcf": "chr20.vcf.gz"}',
    }
    run_id = httpx.post(f"{wes.api_url}/runs", data=data, files=files).json()["run_id"]
    final = wait_for(
        lambda: httpx.get(f"{wes.api_url}/runs/{run_id}/status").json(),
        lambda b: b["state"].endswith("ERROR"),
    )
    assert final["state"] == "SYSTEM_ERROR"
    wes.admin.set(fail_mode="error")
    run_id = httpx.post(f"{wes.api_url}/runs", data=data, files=files).json()["run_id"]
    final = wait_for(
        lambda: httpx.get(f"{wes.api_url}/runs/{run_id}/status").json(),
        lambda b: b["state"].endswith("ERROR"),
    )
    assert final["state"] == "EXECUTOR_ERROR"


def test_starter_kit_dead_run_is_unknown(sandbox_server, tmp_path):
    wes = sandbox_server(
        "wes", flavour="starter-kit", faults={"fail_at_step": "qc", "fail_mode": "dead"}
    )
    vcf = tmp_path / "chr20.vcf.gz"
    vcf.write_bytes(make_vcf())
    data = {
        "workflow_type": "NEXTFLOW",
        "workflow_type_version": "21.04.0",
        "workflow_url": "https://github.com/genepi/imputationserver2",
        "workflow_params": json.dumps({"input": vcf.as_uri(), "password": "pw"}),
    }
    run_id = httpx.post(f"{wes.api_url}/runs", data=data).json()["run_id"]
    final = wait_for(
        lambda: httpx.get(f"{wes.api_url}/runs/{run_id}/status").json(),
        lambda b: b["state"] != "RUNNING",
    )
    assert final["state"] == "UNKNOWN"  # no `nextflow log` line to read


def test_invalid_knob_is_refused(michigan):
    response = httpx.put(f"{michigan.admin_url}/_sandbox/faults", json={"error_rate": 2})
    assert response.status_code == 422
    assert httpx.put(f"{michigan.admin_url}/_sandbox/faults", json={"bogus": 1}).status_code == 422


def test_cli_flags_become_options():
    args: argparse.Namespace = _parser().parse_args(
        [
            "michigan",
            "--port",
            "9",
            "--flavour",
            "cg2",
            "--user",
            "carol:tok:Carol C",
            "--error-rate",
            "0.5",
            "--error-statuses",
            "503",
            "--outage",
            "hang",
            "--step-seconds",
            "1",
            "--preset",
            "topmed",
        ]
    )
    options = build_options(args)
    assert options["flavour"] == "cg2"
    assert options["users"][0].token == "tok"
    assert options["faults"] == {"error_rate": 0.5, "error_statuses": [503], "outage": "hang"}
    assert options["timings"] == {"step_seconds": 1.0}
    assert options["app_ids"] == ["imputationserver2", "imputationserver"]
