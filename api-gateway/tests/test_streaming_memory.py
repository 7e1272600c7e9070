"""Flat memory: 256 MiB down and up through a gateway *process*, its RSS sampled meanwhile."""

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest

from fedimpute_shared.embedded import free_port

from .conftest import SERVICES, url_setting
from .support import CHUNK, GATEWAY_SECRET

SIZE = 256 * 2**20
# The gateway may grow by buffers and allocator noise, never by anything like the body size.
MAX_GROWTH = 48 * 2**20


@pytest.fixture
async def gateway_process(upstreams, token_issuer, redis_db_url) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REDIS_URL": redis_db_url,
        "JWKS_URL": token_issuer.jwks_url,
        "SERVICE_CLIENT_SECRET": GATEWAY_SECRET,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DEFAULT": "10000/60",
        "RATE_LIMIT_UPLOAD": "10000/60",
        **{url_setting(s).upper(): upstreams[s] for s in SERVICES},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api_gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60  # cold imports can be slow on CI disks
            while True:
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, "the gateway exited"
                assert time.monotonic() < deadline, "the gateway did not start"
                await asyncio.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


class RssSampler:
    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            await asyncio.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_download_and_upload_stream_with_flat_memory(gateway_process, user):
    url, pid = gateway_process
    async with httpx.AsyncClient(timeout=60) as client:
        # warm up: imports, the JWKS, the connection pools, one small transfer each way
        await client.get(f"{url}/api/files/blob?size=1048576", headers=user)
        await client.post(f"{url}/api/files", content=b"w" * 1048576, headers=user)
        sampler = RssSampler(pid)
        baseline = sampler.rss()

        with sampler:
            received = 0
            digest = hashlib.sha256()
            async with client.stream(
                "GET", f"{url}/api/files/blob?size={SIZE}", headers=user
            ) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    digest.update(chunk)
            download_peak = sampler.peak

            async def body() -> AsyncIterator[bytes]:
                block = os.urandom(CHUNK)
                for _ in range(SIZE // CHUNK):
                    yield block

            upload = await client.post(
                f"{url}/api/files",
                content=body(),
                headers={**user, "Content-Type": "application/octet-stream"},
            )
            upload_peak = sampler.peak

    assert received == SIZE
    assert upload.status_code == 200
    assert upload.json()["body_size"] == SIZE
    assert download_peak - baseline < MAX_GROWTH, (baseline, download_peak)
    assert upload_peak - baseline < MAX_GROWTH, (baseline, upload_peak)
