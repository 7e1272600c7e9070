"""The WES adapter end to end: the sandbox WES simulator (spec and Starter Kit flavours) and,
unchanged, the real sapporo server (skipped only if it cannot be installed)."""

from __future__ import annotations

import asyncio
import gzip
import io
import zipfile

import httpx
import pytest

from job_processor.adapters.base import Credentials, NotSubmittable, RemoteRejected
from job_processor.adapters.ga4gh_wes import WesAdapter
from sandbox.real_wes import WES_PREFIX
from sandbox.testdata import make_vcf
from sandbox.vcf.bgzf import decompress
from service_registry.workflows.templates import TEMPLATES

from .helpers import PASSWORD, input_file, job_spec, read_all, target, until_terminal, vcf_inputs

NONE = Credentials.none()


def profile(template: str, **changes):
    return TEMPLATES[template].profile | changes


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def test_spec_simulator_runs_the_sandbox_profile(sandbox_server, client, file_server):
    server = sandbox_server("wes", "spec", timings={"task_seconds": 0.1})
    service = target(
        "ga4gh_wes",
        server.base_url,
        api_url=server.api_url,
        workflow_profile=profile("sandbox-imputation"),
    )
    adapter = WesAdapter(client)
    assert (await adapter.verify_credentials(service, NONE)).ok
    spec = job_spec(vcf_inputs(file_server, "20", "21"), r2_filter=0.0)
    submission = await adapter.submit(service, NONE, spec)
    status, seen = await until_terminal(adapter, service, NONE, submission.remote_id)
    assert status.state == "completed", status
    assert seen[0] in ("QUEUED", "INITIALIZING")
    assert seen[-1] == "COMPLETE"
    assert any(step.startswith("input_validation") for step in status.steps)
    found = await adapter.find(service, NONE, spec)
    assert found is not None
    assert found.remote_id == submission.remote_id
    results = {r.name: r for r in await adapter.results(service, NONE, submission.remote_id)}
    assert {"chr_20.zip", "chr_21.zip"} <= set(results)
    assert all(r.downloadable for r in results.values())
    data = await read_all(adapter.download(service, NONE, results["chr_20.zip"], password=PASSWORD))
    dose = decompress(zipfile.ZipFile(io.BytesIO(data)).read("chr20.dose.vcf.gz")).decode()
    assert "GT:DS:GP" in dose


async def test_spec_simulator_states_paging_cancel_and_failures(
    sandbox_server, client, file_server
):
    slow = sandbox_server("wes", "spec", timings={"queued_seconds": 60}, last_page_token="empty")
    queue = target(
        "ga4gh_wes",
        slow.base_url,
        api_url=slow.api_url,
        workflow_profile=profile("sandbox-imputation"),
    )
    adapter = WesAdapter(client)
    # 120 later runs: find() pages (page size 100) to reach the oldest
    first = job_spec(vcf_inputs(file_server, "20"))
    wanted = await adapter.submit(queue, NONE, first)
    for _ in range(120):
        await adapter.submit(queue, NONE, job_spec(first.inputs))
    assert (await adapter.find(queue, NONE, first)).remote_id == wanted.remote_id
    assert (await adapter.status(queue, NONE, wanted.remote_id)).state == "queued"
    cancelled = await adapter.cancel(queue, NONE, wanted.remote_id)
    assert cancelled.ok, cancelled
    status, _ = await until_terminal(adapter, queue, NONE, wanted.remote_id)
    assert status.state == "cancelled"
    slow.stop()

    server = sandbox_server("wes", "spec", timings={"task_seconds": 0.4})
    service = target(
        "ga4gh_wes",
        server.base_url,
        api_url=server.api_url,
        workflow_profile=profile("sandbox-imputation"),
    )

    server.admin.set(run_detour="PAUSED")
    paused = await adapter.submit(service, NONE, job_spec(first.inputs))
    _, seen = await until_terminal(adapter, service, NONE, paused.remote_id, interval=0.02)
    assert "PAUSED" in seen
    server.admin.set(run_detour="PREEMPTED")
    preempted = await adapter.submit(service, NONE, job_spec(first.inputs))
    status, _ = await until_terminal(adapter, service, NONE, preempted.remote_id)
    assert (status.state, status.remote_state) == ("failed", "PREEMPTED")
    assert "preempted" in status.message
    server.admin.reset()

    unphased = make_vcf(unphased=True)
    bad = input_file("chr20.vcf.gz", unphased, url=file_server.put("unphased.vcf.gz", unphased))
    failed = await adapter.submit(service, NONE, job_spec([bad], phasing="no_phasing"))
    status, _ = await until_terminal(adapter, service, NONE, failed.remote_id)
    assert (status.state, status.remote_state) == ("failed", "EXECUTOR_ERROR")
    assert status.message == "Your input data is unphased. Please select an algorithm for phasing."
    late = await adapter.cancel(service, NONE, failed.remote_id)
    assert not late.ok
    assert "already ended" in late.message

    missing = input_file("chr20.vcf.gz", b"x", url=f"{file_server.url}/nothing-here.vcf.gz")
    lost = await adapter.submit(service, NONE, job_spec([missing]))
    status, _ = await until_terminal(adapter, service, NONE, lost.remote_id)
    assert (status.state, status.remote_state) == ("failed", "SYSTEM_ERROR")
    assert "Could not download" in status.message


async def test_spec_simulator_with_attachments(sandbox_server, client):
    server = sandbox_server("wes", "spec")
    service = target(
        "ga4gh_wes",
        server.base_url,
        api_url=server.api_url,
        workflow_profile=profile("sandbox-imputation", input_delivery="attachment"),
    )
    adapter = WesAdapter(client)
    data = make_vcf()
    spec = job_spec([input_file("../chr20.vcf.gz", data, chunk=1000)])  # a hostile name is cleaned
    submission = await adapter.submit(service, NONE, spec)
    status, _ = await until_terminal(adapter, service, NONE, submission.remote_id)
    assert status.state == "completed", status


async def test_starter_kit_quirks(sandbox_server, client, file_server):
    server = sandbox_server("wes", "starter-kit", timings={"initializing_seconds": 2.5})
    service = target("ga4gh_wes", server.base_url, workflow_profile=profile("starter-kit-flagstat"))
    adapter = WesAdapter(client)
    spec = job_spec(vcf_inputs(file_server, "20"))
    submission = await adapter.submit(service, NONE, spec)
    cancel = await adapter.cancel(service, NONE, submission.remote_id)
    assert not cancel.ok
    assert "does not cancel runs" in cancel.message
    status, seen = await until_terminal(adapter, service, NONE, submission.remote_id)
    assert status.state == "completed", status
    assert seen[0] == "RUNNING"
    results = await adapter.results(service, NONE, submission.remote_id)
    assert results
    assert all(not r.downloadable and "stays on the node" in r.note for r in results)
    assert all(r.url.startswith("file://") for r in results)
    # the Starter Kit lists finished runs only, without tags or paging: found through its RunLog
    assert (await adapter.find(service, NONE, spec)).remote_id == submission.remote_id

    wrong = target(
        "ga4gh_wes",
        server.base_url,
        workflow_profile=profile("starter-kit-flagstat", workflow_type_version="99"),
    )
    with pytest.raises(RemoteRejected, match="Could not register new WorkflowRun") as refused:
        await adapter.submit(wrong, NONE, spec)
    assert refused.value.status_code == 409
    with pytest.raises(NotSubmittable, match="QC-only"):
        await adapter.submit(service, NONE, job_spec(spec.inputs, mode="qc_only"))


# ---------------------------------------------------------------------------------- real sapporo
# A trivial CWL run takes about 2 s on an idle machine; the bound is for a machine shared by
# many test runs (cwltool starts a Python process per step).
REAL_TIMEOUT = 600.0
CAT_CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
stdout: $(inputs.output_prefix).$(inputs.build).txt
inputs:
  target_vcfs: {type: 'File[]', inputBinding: {position: 1}}
  build: string
  r2_filter: float
  output_prefix: string
outputs:
  joined: {type: stdout}
"""

FAIL_CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, "echo 'ERROR: the target is on hg19 but the panel on hg38: lift it over' >&2; exit 3"]
inputs:
  target_vcfs: {type: 'File[]'}
outputs: []
"""

SLEEP_CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sleep, "60"]
inputs:
  target_vcfs: {type: 'File[]'}
outputs: []
"""


def _node_profile(workflow_url: str, **changes):
    base = {
        "name": "test",
        "workflow_url": workflow_url,
        "workflow_type": "CWL",
        "workflow_type_version": "v1.2",
        "workflow_engine": "cwltool",
        "input_delivery": "url",
        "params": {
            "target_vcfs": {"from": "input_files", "as": "cwl_file_array"},
            "build": {"from": "build"},
            "r2_filter": {"from": "r2_filter", "as": "number"},
            "output_prefix": {"from": "output_prefix"},
        },
    }
    return base | changes


@pytest.mark.parametrize("delivery", ["url", "attachment"])
async def test_real_sapporo_runs_the_job_unchanged(
    real_wes_server, client, file_server, tmp_path, delivery
):
    node = real_wes_server("sapporo", url_prefix=WES_PREFIX)
    workflow = tmp_path / "cat.cwl"
    workflow.write_text(CAT_CWL)
    service = target(
        "ga4gh_wes",
        node.base_url,  # the registry's base URL; the adapter adds /ga4gh/wes/v1
        workflow_profile=_node_profile(workflow.as_uri(), input_delivery=delivery),
    )
    adapter = WesAdapter(client)
    first, second = b"first file\n", gzip.compress(b"second")
    inputs = [
        input_file("chr20.vcf.gz", first, url=file_server.put("a.vcf.gz", first)),
        input_file("chr21.vcf.gz", second, url=file_server.put("b.vcf.gz", second)),
    ]
    spec = job_spec(inputs, name="Study 1", build="hg38")
    assert (await adapter.verify_credentials(service, NONE)).ok
    submission = await adapter.submit(service, NONE, spec)
    status, seen = await until_terminal(
        adapter, service, NONE, submission.remote_id, timeout=REAL_TIMEOUT, interval=0.2
    )
    assert status.state == "completed", (status, node.log()[-2000:])
    assert seen[-1] == "COMPLETE"
    results = {r.name: r for r in await adapter.results(service, NONE, submission.remote_id)}
    joined = results["Study_1.hg38.txt"]
    assert joined.downloadable
    assert await read_all(adapter.download(service, NONE, joined)) == first + second
    found = await adapter.find(service, NONE, spec)
    assert found is not None
    assert found.remote_id == submission.remote_id


async def test_real_sapporo_failures_cancel_and_errors(
    real_wes_server, client, file_server, tmp_path
):
    node = real_wes_server("sapporo", url_prefix=WES_PREFIX)
    cat, sleep, fail = tmp_path / "cat.cwl", tmp_path / "sleep.cwl", tmp_path / "fail.cwl"
    cat.write_text(CAT_CWL)
    sleep.write_text(SLEEP_CWL)
    fail.write_text(FAIL_CWL)
    files_only = {"target_vcfs": {"from": "input_files", "as": "cwl_file_array"}}
    adapter = WesAdapter(client)
    data = b"x"
    good = [input_file("chr20.vcf.gz", data, url=file_server.put("x.vcf.gz", data))]

    service = target("ga4gh_wes", node.base_url, workflow_profile=_node_profile(cat.as_uri()))
    failing = target(
        "ga4gh_wes", node.base_url, workflow_profile=_node_profile(fail.as_uri(), params=files_only)
    )
    failed = await adapter.submit(failing, NONE, job_spec(good))
    status, _ = await until_terminal(
        adapter, failing, NONE, failed.remote_id, timeout=REAL_TIMEOUT, interval=0.2
    )
    assert (status.state, status.remote_state) == ("failed", "EXECUTOR_ERROR")
    assert status.message == "ERROR: the target is on hg19 but the panel on hg38: lift it over"

    sleeper = target(
        "ga4gh_wes",
        node.base_url,
        workflow_profile=_node_profile(sleep.as_uri(), params=files_only),
    )
    running = await adapter.submit(sleeper, NONE, job_spec(good))
    for _ in range(int(REAL_TIMEOUT / 0.1)):  # cancel once the workflow really runs
        if (await adapter.status(sleeper, NONE, running.remote_id)).remote_state == "RUNNING":
            break
        await asyncio.sleep(0.1)
    cancelled = await adapter.cancel(sleeper, NONE, running.remote_id)
    assert cancelled.ok, cancelled
    status, _ = await until_terminal(
        adapter, sleeper, NONE, running.remote_id, timeout=REAL_TIMEOUT, interval=0.2
    )
    assert status.state == "cancelled"

    no_engine = target(
        "ga4gh_wes",
        node.base_url,
        workflow_profile=_node_profile(cat.as_uri(), workflow_engine=None),
    )
    with pytest.raises(RemoteRejected, match="workflow_engine"):
        await adapter.submit(no_engine, NONE, job_spec(good))
    from job_processor.adapters.base import RemoteNotFound

    with pytest.raises(RemoteNotFound):
        await adapter.status(service, NONE, "5b4f6fb4-2a55-4e1c-9a3e-000000000000")


async def test_real_wes_service_reference_server_unchanged(
    real_wes_server, client, file_server, tmp_path
):
    """The GA4GH/CWL reference server (wes-service): runs listed under `workflows` without tags
    (found through the RunLog), outputs a cwltool object of `file://` paths (stays on the node)."""
    node = real_wes_server("wes-service")
    workflow = tmp_path / "cat.cwl"
    workflow.write_text(CAT_CWL)
    profile = _node_profile(workflow.as_uri(), workflow_engine=None)
    service = target("ga4gh_wes", node.base_url, workflow_profile=profile)
    adapter = WesAdapter(client)
    data = b"hello\n"
    spec = job_spec([input_file("chr20.vcf.gz", data, url=file_server.put("in.vcf.gz", data))])
    submission = await adapter.submit(service, NONE, spec)
    status, _ = await until_terminal(
        adapter, service, NONE, submission.remote_id, timeout=REAL_TIMEOUT, interval=0.3
    )
    assert status.state == "completed", status
    (result,) = await adapter.results(service, NONE, submission.remote_id)
    assert result.name == "My_study.hg19.txt"
    assert result.size == len(data)
    assert not result.downloadable
    assert result.note.startswith("stays on the node")
    found = await adapter.find(service, NONE, spec)
    assert found is not None
    assert found.remote_id == submission.remote_id
