"""The Cloudgene adapter end to end against the sandbox's Cloudgene simulator (CG3 and CG2)."""

from __future__ import annotations

import asyncio
import gzip
import io
import zipfile

import httpx
import pytest

from job_processor.adapters.base import AuthFailed, RemoteUnavailable
from job_processor.adapters.michigan import MichiganAdapter
from sandbox.testdata import make_vcf
from sandbox.vcf.bgzf import decompress

from .helpers import PASSWORD, input_file, job_spec, read_all, target, token


async def _until_terminal(adapter, service, creds, remote_id, timeout=30):
    seen = []
    for _ in range(int(timeout / 0.05)):
        status = await adapter.status(service, creds, remote_id)
        if not seen or seen[-1] != status.state:
            seen.append(status.state)
        if status.terminal:
            return status, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {seen} after {timeout} s")


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.mark.parametrize("flavour", ["cg3", "cg2"])
async def test_submit_poll_results_download_decrypted(sandbox_server, client, tmp_path, flavour):
    server = sandbox_server(
        "michigan", flavour, timings={"queue_seconds": 0.3, "export_seconds": 0.2}, max_downloads=2
    )
    adapter = MichiganAdapter(client, workdir=tmp_path)
    # the app id as the registry stores it: CG3 lists "imputationserver2", CG2 "imputationserver"
    service = target("michigan", server.base_url, cloudgene_app_id=server.info["app_ids"][0])
    creds = token(server.users[0].token)
    assert (await adapter.verify_credentials(service, creds)).ok
    assert not (await adapter.verify_credentials(service, token("wrong"))).ok

    chr20, chr21 = make_vcf(), make_vcf(chrom="21")
    spec = job_spec(
        [
            input_file("chr20.vcf.gz", chr20, chunk=4096),
            input_file("chr21.vcf.gz", chr21, chunk=4096),
        ],
        r2_filter=0.0,
    )
    submission = await adapter.submit(service, creds, spec)
    assert submission.remote_id.startswith("job-")
    status, seen = await _until_terminal(adapter, service, creds, submission.remote_id)
    assert status.state == "completed", status
    assert seen[-1] == "completed"
    assert any(
        line.startswith("Input Validation: 2 valid VCF file(s) found.") for line in status.steps
    )

    found = await adapter.find(service, creds, spec)
    assert found is not None
    assert found.remote_id == submission.remote_id

    results = {r.name: r for r in await adapter.results(service, creds, submission.remote_id)}
    assert {"chr_20.zip", "chr_21.zip", "qc_report.txt"} <= set(results)
    data = await read_all(
        adapter.download(service, creds, results["chr_20.zip"], password=PASSWORD)
    )
    archive = zipfile.ZipFile(io.BytesIO(data))
    dose = decompress(archive.read("chr20.dose.vcf.gz")).decode()  # no password any more
    header = next(line for line in dose.splitlines() if line.startswith("#CHROM"))
    assert header.split("\t")[9:11] == ["S1", "S2"]
    assert b"Rsq" in gzip.decompress(archive.read("chr20.info.gz")).splitlines()[0]
    report = await read_all(adapter.download(service, creds, results["qc_report.txt"]))
    assert report.startswith(b"Input Validation")
    assert list(tmp_path.iterdir()) == []  # temporary zips removed


async def test_failure_text_cancel_and_faults(sandbox_server, client):
    server = sandbox_server("michigan", "cg3", timings={"queue_seconds": 2.0})
    adapter = MichiganAdapter(client)
    service = target("michigan", server.base_url)
    creds = token(server.users[0].token)

    unphased = job_spec([input_file("chr20.vcf.gz", make_vcf(unphased=True))], phasing="no_phasing")
    failed = await adapter.submit(service, creds, unphased)
    status = await adapter.status(service, creds, failed.remote_id)
    assert (status.state, status.queue_position) == ("queued", 1)
    assert (await adapter.cancel(service, creds, failed.remote_id)).ok
    assert (await adapter.status(service, creds, failed.remote_id)).state == "cancelled"

    server.admin.set(expired_tokens=True)
    with pytest.raises(AuthFailed):
        await adapter.status(service, creds, failed.remote_id)
    server.admin.set(expired_tokens=False, malformed_json=True)
    with pytest.raises(RemoteUnavailable, match="malformed JSON"):
        await adapter.status(service, creds, failed.remote_id)
    server.admin.set(malformed_json=False, error_rate=1.0, error_statuses=[503])
    with pytest.raises(RemoteUnavailable):
        await adapter.status(service, creds, failed.remote_id)
    server.admin.set(error_rate=0.0, outage="refuse")
    with pytest.raises(RemoteUnavailable, match="cannot reach"):
        await adapter.status(service, creds, failed.remote_id)
    server.admin.reset()


async def test_validation_failure_carries_the_servers_text(sandbox_server, client):
    server = sandbox_server("michigan", "cg3")
    adapter = MichiganAdapter(client)
    service = target("michigan", server.base_url)
    creds = token(server.users[0].token)
    spec = job_spec([input_file("chr20.vcf.gz", make_vcf(unphased=True))], phasing="no_phasing")
    submission = await adapter.submit(service, creds, spec)
    status, _ = await _until_terminal(adapter, service, creds, submission.remote_id)
    assert status.state == "failed"
    assert status.message == "Your input data is unphased. Please select an algorithm for phasing."


async def test_the_per_user_job_limit_is_a_wait_not_a_failure(sandbox_server, client):
    server = sandbox_server(
        "michigan", "cg3", timings={"queue_seconds": 5.0}, max_running_jobs_per_user=1
    )
    adapter = MichiganAdapter(client)
    service = target("michigan", server.base_url)
    creds = token(server.users[0].token)
    await adapter.submit(service, creds, job_spec([input_file("chr20.vcf.gz", make_vcf())]))
    with pytest.raises(RemoteUnavailable, match="Only 1 jobs per user"):
        await adapter.submit(service, creds, job_spec([input_file("chr20.vcf.gz", make_vcf())]))
