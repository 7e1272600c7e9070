"""Builders for the adapter tests: targets, credentials, input files streamed from memory."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from contextlib import asynccontextmanager
from typing import Any

from job_processor.adapters.base import Credentials, InputFile, JobSpec, ServiceTarget
from sandbox.testdata import make_vcf

PASSWORD = "Zip-Pass_4-FedImpute!"


def target(kind: str, base_url: str, **changes: Any) -> ServiceTarget:
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "slug": f"{kind}-test",
        "kind": kind,
        "base_url": base_url,
        "api_url": None,
        "cloudgene_app_id": "imputationserver2" if kind == "michigan" else None,
        "workflow_profile": None,
        "protocol_options": {},
        "credential_type": "api_token" if kind == "michigan" else "none",
        "requires_credentials": kind == "michigan",
    }
    return ServiceTarget.from_registry(payload | changes)


def token(value: str) -> Credentials:
    return Credentials("token", {"token": value})


def input_file(name: str, data: bytes, *, chunk: int = 7, url: str | None = None) -> InputFile:
    """An input streamed in small chunks, counting how many times it was opened."""
    opened: list[int] = []

    @asynccontextmanager
    async def open_():
        opened.append(1)

        async def chunks():
            for start in range(0, len(data), chunk):
                yield data[start : start + chunk]

        yield chunks()

    item = InputFile(
        file_id=uuid.uuid4(),
        filename=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        open=open_,
        url=url,
    )
    object.__setattr__(item, "_opened", opened)
    return item


def job_spec(inputs: list[InputFile], **changes: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": uuid.uuid4(),
        "name": "My study",
        "panel": "apps@1000g-phase-3-v5",
        "build": "hg19",
        "phasing": "eagle",
        "population": "eur",
        "r2_filter": 0.3,
        "mode": "imputation",
        "inputs": inputs,
        "result_password": PASSWORD,
    }
    return JobSpec(**(values | changes))


async def read_all(stream) -> bytes:
    async with stream as chunks:
        return b"".join([chunk async for chunk in chunks])


async def until_terminal(adapter, service, creds, remote_id, timeout=60.0, interval=0.05):
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        status = await adapter.status(service, creds, remote_id)
        if not seen or seen[-1] != status.remote_state:
            seen.append(status.remote_state)
        if status.terminal:
            return status, seen
        await asyncio.sleep(interval)
    raise AssertionError(f"run {remote_id} still {seen} after {timeout} s")


def vcf_inputs(file_server, *chroms):
    items = []
    for chrom in chroms:
        data = make_vcf(chrom=chrom)
        name = f"chr{chrom}.vcf.gz"
        items.append(input_file(name, data, url=file_server.put(name, data)))
    return items
