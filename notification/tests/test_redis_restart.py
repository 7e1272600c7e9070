"""Redis restarted under a running consumer: it waits, then resumes from its group's position
(nothing processed twice, nothing published meanwhile lost). The test runs its own
redis-server with an append-only file, as production Redis runs (compose: --appendonly yes)."""

import asyncio
import shutil
import subprocess

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from fedimpute_shared.embedded import free_port
from notification_service.models import Notification, ProcessedEvent

from .conftest import entry_of, started
from .factories import file_validated

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


async def test_consumer_resumes_from_its_group_position_after_a_restart(
    make_app, db, users, tmp_path, names
):
    port = free_port()
    redis_process = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}"
    client = Redis.from_url(url)
    await wait_for(lambda: _pings(client))
    owner = users.add()

    async def notifications():
        return await db.scalar(select(func.count()).select_from(Notification))

    try:
        async with started(make_app, redis_url=url, consumer_block_ms=200) as app:
            consumer = app.state.consumer
            task = asyncio.create_task(consumer.run())
            await client.xadd(names["stream"], entry_of(file_validated(owner)))
            await wait_for(lambda: _at_least(notifications, 1))

            redis_process.terminate()
            redis_process.wait(10)
            await asyncio.sleep(0.5)  # the consumer meets the outage
            redis_process = start_redis(port, tmp_path)
            await wait_for(lambda: _pings(client))
            await client.xadd(names["stream"], entry_of(file_validated(owner)))
            await wait_for(lambda: _at_least(notifications, 2))

            consumer.stop()
            await asyncio.wait_for(task, 10)
        assert await db.scalar(select(func.count()).select_from(ProcessedEvent)) == 2
        assert await notifications() == 2
    finally:
        await client.aclose()
        redis_process.terminate()
        redis_process.wait(10)


async def _pings(client: Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


async def _at_least(count, n: int) -> bool:
    return await count() >= n
