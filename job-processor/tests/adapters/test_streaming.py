"""Inputs and results larger than the memory the adapters use: a 64 MiB input is uploaded and a
64 MiB result downloaded through a raw socket server (respx and the simulators buffer bodies),
while tracemalloc watches this process's peak allocation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tracemalloc
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest

from job_processor.adapters.base import InputFile, RemoteResult
from job_processor.adapters.ga4gh_wes import WesAdapter
from job_processor.adapters.michigan import MichiganAdapter

from .helpers import job_spec, target, token

SIZE = 64 * 1024 * 1024
CHUNK = 1024 * 1024
BUDGET = 12 * 1024 * 1024  # far below one copy of the file


def generated_input(name: str, size: int) -> InputFile:
    """An input produced chunk by chunk, as file-manager streams it."""

    @asynccontextmanager
    async def open_():
        async def chunks():
            for start in range(0, size, CHUNK):
                yield bytes([start // CHUNK % 256]) * min(CHUNK, size - start)

        yield chunks()

    return InputFile(uuid.uuid4(), name, size, None, open_)


class RawServer:
    """A minimal HTTP/1.1 server: counts and hashes request bodies, answers JSON or a big body."""

    def __init__(self) -> None:
        self.received = 0
        self.digest = hashlib.sha256()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        remaining = int(headers.get("content-length", "0"))
        while remaining:
            chunk = await reader.read(min(remaining, CHUNK))
            remaining -= len(chunk)
            self.received += len(chunk)
            self.digest.update(chunk)
        if method == "GET" and path.startswith("/big"):
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n".encode()
            )
            block = b"r" * CHUNK
            for _ in range(SIZE // CHUNK):
                writer.write(block)
                await writer.drain()
        else:
            body = json.dumps(
                {"valid": True, "success": True, "id": "job-1", "run_id": "run-1"}
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def raw_server():
    server = RawServer()
    url = await server.start()
    yield server, url
    await server.stop()


async def test_a_large_input_is_uploaded_in_chunks(raw_server):
    server, url = raw_server
    async with httpx.AsyncClient(timeout=60) as client:
        adapter = MichiganAdapter(client)
        spec = job_spec([generated_input("chr20.vcf.gz", SIZE)])
        tracemalloc.start()
        try:
            submitted = await adapter.submit(target("michigan", url), token("t"), spec)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert submitted.remote_id == "job-1"
    assert server.received > SIZE  # the file plus the form fields and the token check
    assert peak < BUDGET, f"peak {peak / 2**20:.1f} MiB"


async def test_a_large_result_is_downloaded_in_chunks(raw_server):
    _, url = raw_server
    async with httpx.AsyncClient(timeout=60) as client:
        adapter = WesAdapter(client)
        result = RemoteResult("imputed.dose.vcf.gz", f"{url}/big", None, True)
        total = 0
        tracemalloc.start()
        try:
            async with adapter.download(target("ga4gh_wes", url), token("t"), result) as chunks:
                async for chunk in chunks:
                    total += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == SIZE
    assert peak < BUDGET, f"peak {peak / 2**20:.1f} MiB"
