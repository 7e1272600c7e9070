"""Redis restarted under a running consumer: it waits, then resumes from its group's position
(nothing processed twice, nothing published meanwhile lost). The test runs its own
redis-server with an append-only file, as production Redis runs (compose: --appendonly yes)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from fedimpute_shared.db import utcnow
from fedimpute_shared.embedded import free_port
from fedimpute_shared.outbox import event_fields
from fedimpute_shared.testing.client import app_client
from monitoring_service.models import ExternalStatusChange, ProcessedEvent

from .conftest import health_changed

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def start_redis(port: int, directory) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )


async def wait_for(predicate, timeout=20):
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def _pings(client: Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


async def test_consumer_resumes_from_its_group_position_after_a_restart(
    make_app, db, tmp_path, stream
):
    port = free_port()
    redis_process = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}"
    client = Redis.from_url(url)
    await wait_for(lambda: _pings(client))

    async def changes(n):
        return await db.scalar(select(func.count()).select_from(ExternalStatusChange)) >= n

    try:
        app = make_app(redis_url=url, consumer_block_ms=200)
        async with app_client(app):
            consumer = app.state.consumer
            await consumer.ensure_group("0")
            task = asyncio.create_task(consumer.run())
            start = utcnow() - timedelta(minutes=5)
            await client.xadd(stream, event_fields(health_changed("unhealthy", at=start)))
            await wait_for(lambda: changes(1))

            redis_process.terminate()
            redis_process.wait(10)
            await asyncio.sleep(0.5)  # the consumer meets the outage
            redis_process = start_redis(port, tmp_path)
            await wait_for(lambda: _pings(client))
            healthy = health_changed(
                "healthy", previous="unhealthy", at=start + timedelta(minutes=1)
            )
            await client.xadd(stream, event_fields(healthy))
            await wait_for(lambda: changes(2))

            consumer.stop()
            await asyncio.wait_for(task, 10)
        assert await db.scalar(select(func.count()).select_from(ProcessedEvent)) == 2
        assert await db.scalar(select(func.count()).select_from(ExternalStatusChange)) == 2
    finally:
        await client.aclose()
        redis_process.terminate()
        redis_process.wait(10)
