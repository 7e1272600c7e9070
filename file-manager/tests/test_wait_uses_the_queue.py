"""Issue 10 item 8: ``POST /files?wait=true`` validates through the same bounded validation
queue as every other upload, so concurrent waiting uploads never run more validator child
processes (each up to VALIDATION_MEMORY_LIMIT_MB) than ``VALIDATION_CONCURRENCY``."""

import asyncio

from fedimpute_shared.testing.client import app_client
from file_manager.validation.service import Validator

from .conftest import good_vcf, upload_raw


async def test_concurrent_wait_uploads_share_the_queues_workers(make_app, alice, db, monkeypatch):
    running = 0
    peak = 0
    original = Validator.run_child

    async def counted(self, *args, **kwargs):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.2)  # keep the child's slot busy long enough to overlap
            return await original(self, *args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(Validator, "run_child", counted)
    data = good_vcf()
    async with app_client(make_app(validation_concurrency=1)) as client:
        responses = await asyncio.gather(
            *(upload_raw(client, alice, data, wait="true") for _ in range(4))
        )
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert all(r.json()["status"] == "valid" for r in responses)
    assert peak == 1
