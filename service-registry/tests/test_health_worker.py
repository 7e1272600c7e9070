"""The sweep: concurrency, per-check timeout, recording, one replica at a time."""

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from fedimpute_shared.config import validated_copy
from fedimpute_shared.db import advisory_lock
from service_registry.health.http import probe_client
from service_registry.health.worker import SWEEP_LOCK_KEY, HealthWorker
from service_registry.metrics import RegistryMetrics
from service_registry.models import HealthStatus, ImputationService, ServiceHealthCheck, ServiceKind

from .remotes import WES_SERVICE_INFO, hang, json_body

WES_PATH = "/ga4gh/wes/v1/service-info"


@pytest.fixture
def remotes(start_remote):
    """``await remotes(behaviour)``: a fake WES node answering service-info with ``behaviour``."""

    async def make(behaviour):
        return await start_remote({WES_PATH: behaviour})

    return make


@pytest.fixture
def worker_settings(settings):
    return validated_copy(
        settings,
        allow_private_urls=True,
        health_check_timeout_seconds=0.5,
        health_check_concurrency=4,
    )


@pytest.fixture
def make_worker(engine, worker_settings):
    def build(settings=worker_settings):
        client = probe_client(True, settings.health_check_timeout_seconds)
        return HealthWorker(
            engine,
            async_sessionmaker(engine, expire_on_commit=False),
            client,
            settings,
            RegistryMetrics(CollectorRegistry()),
        )

    return build


async def add_services(db, urls, **fields):
    for i, url in enumerate(urls):
        db.add(
            ImputationService(
                name=f"svc {i}",
                slug=f"svc-{i}-{time.monotonic_ns()}",
                kind=ServiceKind.GA4GH_WES,
                base_url=url,
                protocol_options={},
                supported_builds=[],
                supported_formats=[],
                **fields,
            )
        )
    await db.commit()


async def test_sweep_records_every_active_service(db, remotes, make_worker):
    ok = await remotes(json_body(WES_SERVICE_INFO))
    silent = await remotes(hang())
    await add_services(db, [ok.url, ok.url, silent.url])
    await add_services(db, [ok.url], is_active=False)
    report = await make_worker().sweep_once()
    assert report.services == 3
    assert report.by_status == {"healthy": 2, "timeout": 1}
    assert await db.scalar(select(func.count()).select_from(ServiceHealthCheck)) == 3
    statuses = dict(
        (
            await db.execute(
                select(ImputationService.base_url, ImputationService.health_status).where(
                    ImputationService.is_active
                )
            )
        ).all()
    )
    assert statuses[ok.url] is HealthStatus.HEALTHY
    # one timeout is a blip: not unhealthy until the second consecutive failure
    assert statuses[silent.url] is HealthStatus.UNKNOWN


async def test_hanging_services_cost_only_their_timeout(db, remotes, make_worker, worker_settings):
    silent = await remotes(hang())
    slow = await remotes(json_body(WES_SERVICE_INFO, delay=0.2))
    await add_services(db, [silent.url] * 4 + [slow.url] * 8)
    started = time.perf_counter()
    report = await make_worker().sweep_once()
    elapsed = time.perf_counter() - started
    # concurrency 4: the four hanging checks take one 0.5 s slot round, the eight slow ones two
    # rounds of 0.2 s (~0.9 s); a sequential loop would need 4 x 0.5 + 8 x 0.2 = 3.6 s. The bound
    # sits between the two so a loaded machine (1.9 s seen beside two other test processes) passes
    # and a sequential sweep still fails.
    assert report.by_status == {"timeout": 4, "healthy": 8}
    assert elapsed < 3.0


async def test_concurrency_is_bounded(db, make_worker, worker_settings):
    in_flight = peak = 0

    async def handle(reader, writer):
        nonlocal in_flight, peak
        await reader.readuntil(b"\r\n\r\n")
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        body = b'{"workflow_type_versions": {}}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    await add_services(db, [url] * 20)
    await make_worker().sweep_once()
    server.close()
    assert peak == worker_settings.health_check_concurrency


async def test_only_one_replica_sweeps_at_a_time(db, engine, remotes, make_worker):
    ok = await remotes(json_body(WES_SERVICE_INFO))
    await add_services(db, [ok.url])
    async with advisory_lock(engine, SWEEP_LOCK_KEY) as held:
        assert held
        assert await make_worker().sweep_once() is None  # the other "replica" holds the lock
    assert ok.hits[WES_PATH] == 0
    assert (await make_worker().sweep_once()).services == 1


async def test_two_workers_racing_sweep_once(db, remotes, make_worker):
    slow = await remotes(json_body(WES_SERVICE_INFO, delay=0.3))
    await add_services(db, [slow.url] * 3)
    reports = await asyncio.gather(make_worker().sweep_once(), make_worker().sweep_once())
    assert sorted(r is None for r in reports) == [False, True]
    assert slow.hits[WES_PATH] == 3


async def test_sweep_endpoint_is_202_and_runs_in_background(make_app, admin, db, remotes):
    from fedimpute_shared.testing.client import app_client

    ok = await remotes(json_body(WES_SERVICE_INFO))
    await add_services(db, [ok.url, ok.url])
    async with app_client(make_app(allow_private_urls=True)) as api:
        response = await api.post("/services/health-sweeps", headers=admin)
        assert response.status_code == 202
        assert response.json()["accepted"] is True
        for _ in range(50):
            if await db.scalar(select(func.count()).select_from(ServiceHealthCheck)) == 2:
                break
            await asyncio.sleep(0.05)
    assert await db.scalar(select(func.count()).select_from(ServiceHealthCheck)) == 2


async def test_sweep_endpoint_is_for_writers(client, researcher):
    assert (await client.post("/services/health-sweeps", headers=researcher)).status_code == 403


async def test_worker_loop_runs_from_the_lifespan(make_app, db, remotes, clock):
    from fedimpute_shared.testing.client import app_client

    ok = await remotes(json_body(WES_SERVICE_INFO))
    await add_services(db, [ok.url])
    app = make_app(
        allow_private_urls=True,
        health_worker_enabled=True,
        health_check_interval_seconds=300,
        health_check_jitter_ratio=0,
    )
    async with app_client(app):
        await _until(lambda: clock.sleepers == 1)  # the sweep task waits its first interval
        assert ok.hits[WES_PATH] == 0
        for sweeps in (1, 2):
            await clock.advance(300)
            await _until(lambda: clock.sleepers == 1)  # swept, and waiting again
            assert ok.hits[WES_PATH] == sweeps


async def _until(condition, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
