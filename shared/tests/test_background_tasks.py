"""The background-task helper: periodic work on a manual clock, crash restarts, the advisory lock
that lets one replica do a round, one-off runs, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from fedimpute_shared.app import create_service_app
from fedimpute_shared.db import advisory_lock, lock_key
from fedimpute_shared.tasks import BackgroundTasks
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.clock import settle


async def test_every_runs_at_once_then_each_interval(clock):
    calls = []
    tasks = BackgroundTasks()

    async def work():
        calls.append(clock.monotonic())

    tasks.every("tick", work, interval=10)
    await tasks.start()
    await settle()
    assert calls == [0.0]
    await clock.advance(9)
    assert calls == [0.0]
    await clock.advance(1)
    await clock.advance(10)
    assert calls == [0.0, 10.0, 20.0]
    await tasks.stop()


async def test_first_after_delays_the_first_run(clock):
    calls = []
    tasks = BackgroundTasks()

    async def work():
        calls.append(clock.monotonic())

    tasks.every("sweep", work, interval=lambda: 5, first_after=30)
    await tasks.start()
    await settle()
    await clock.advance(29)
    assert calls == []
    await clock.advance(1)
    assert calls == [30.0]
    await tasks.stop()


async def test_a_failing_round_is_logged_and_the_next_one_comes(clock, caplog):
    outcomes = iter([RuntimeError("boom"), None, None])
    done = []
    tasks = BackgroundTasks()

    async def work():
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        done.append(clock.monotonic())

    tasks.every("flaky", work, interval=1)
    await tasks.start()
    await settle()
    await clock.advance(1)
    await clock.advance(1)
    await tasks.stop()
    assert done == [1.0, 2.0]
    assert "background task flaky failed" in caplog.text


async def test_a_crashed_loop_restarts_after_a_growing_delay(clock, caplog):
    starts = []
    tasks = BackgroundTasks(restart_delay=1, max_restart_delay=4)

    async def consumer():
        starts.append(clock.monotonic())
        if len(starts) < 5:
            raise ConnectionError("stream lost")
        await asyncio.Event().wait()  # the fifth start keeps running

    tasks.run("consumer", consumer)
    await tasks.start()
    await settle()
    await clock.advance(20)
    # delays 1, 2, 4, 4 (capped)
    assert starts == [0.0, 1.0, 3.0, 7.0, 11.0]
    assert caplog.text.count("background task consumer crashed") == 4
    await tasks.stop()


async def test_a_loop_that_returns_is_done(clock):
    runs = []
    tasks = BackgroundTasks()

    async def once():
        runs.append(1)

    tasks.run("once", once)
    await tasks.start()
    await settle()
    await clock.advance(100)
    assert runs == [1]
    await tasks.stop()


async def test_stop_cancels_and_calls_on_stop():
    stopped = asyncio.Event()
    cancelled = []
    tasks = BackgroundTasks()

    async def listener():
        try:
            await stopped.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    tasks.run("listener", listener, on_stop=stopped.set)
    await tasks.start()
    await settle()
    await tasks.stop()
    assert stopped.is_set()
    assert not tasks.running


async def test_a_task_that_ignores_cancellation_does_not_hang_stop(caplog):
    release = asyncio.Event()
    tasks = BackgroundTasks(stop_timeout=0.2)

    async def stubborn():
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # what a careless client library may do

    tasks.run("stubborn", stubborn)
    await tasks.start()
    await settle()
    await tasks.stop()
    assert "background task stubborn did not stop in time" in caplog.text
    release.set()


async def swallowing_read(rounds: list[int]) -> None:
    """A read whose cancellation comes out as ``TimeoutError``, as on Python 3.11 when a cancel
    lands while an ``asyncio.timeout`` inside redis-py or asyncpg expires; callers then catch
    it as an ``OSError`` ("the server is down") and the cancellation is gone."""
    rounds.append(1)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise TimeoutError("read timed out") from None


@pytest.mark.parametrize("shape", ["every", "run"])
async def test_a_swallowed_cancellation_still_stops_the_loop(shape, caplog):
    rounds: list[int] = []
    tasks = BackgroundTasks(stop_timeout=2, restart_delay=0.01)

    async def round_that_catches_oserror() -> None:
        # "Redis is down; the next round retries" — the outbox relay's shape
        with contextlib.suppress(OSError):
            await swallowing_read(rounds)

    if shape == "every":
        tasks.every("relay", round_that_catches_oserror, interval=0.01)
    else:
        tasks.run("consumer", lambda: swallowing_read(rounds))
    await tasks.start()
    await settle()
    await tasks.stop()
    assert "did not stop in time" not in caplog.text
    await asyncio.sleep(0.1)
    assert rounds == [1], "the loop went round again after it was stopped"


async def test_spawned_work_runs_and_its_error_is_logged(caplog):
    tasks = BackgroundTasks()

    async def fails():
        raise ValueError("bad sweep")

    task = tasks.spawn("sweep-now", fails())
    await asyncio.wait([task])
    await settle()
    assert "background run sweep-now failed" in caplog.text
    await tasks.stop()


def test_names_must_be_unique_and_registered_before_start():
    tasks = BackgroundTasks()

    async def work():
        return None

    tasks.every("a", work, interval=1)
    with pytest.raises(ValueError, match="already registered"):
        tasks.run("a", work)
    with pytest.raises(ValueError, match="needs a database engine"):
        tasks.every("b", work, interval=1, single=True)


async def test_single_skips_a_round_another_replica_holds(demo_db_url, clock):
    engine = create_async_engine(demo_db_url)
    calls = []
    tasks = BackgroundTasks(engine=engine)

    async def work():
        calls.append(clock.monotonic())

    tasks.every("relay-like", work, interval=1, single=True)
    try:
        async with advisory_lock(engine, lock_key("relay-like")) as held:
            assert held
            await tasks.start()
            await _until(lambda: tasks.running)
            await asyncio.sleep(0.2)  # the first round ran (and found the lock taken)
            assert calls == []
        await clock.advance(1)
        await _until(lambda: calls)
        assert calls == [1.0]
    finally:
        await tasks.stop()
        await engine.dispose()


async def test_two_replicas_never_run_a_single_round_at_once(demo_db_url):
    engine_a, engine_b = create_async_engine(demo_db_url), create_async_engine(demo_db_url)
    inside = peak = 0

    async def work():
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0.05)
        inside -= 1

    replicas = [BackgroundTasks(engine=engine_a), BackgroundTasks(engine=engine_b)]
    for tasks in replicas:
        tasks.every("exclusive", work, interval=0.01, single=True)
    try:
        for tasks in replicas:
            await tasks.start()
        await asyncio.sleep(0.5)
    finally:
        for tasks in replicas:
            await tasks.stop()
        await engine_a.dispose()
        await engine_b.dispose()
    assert peak == 1


async def test_the_app_factory_starts_and_stops_registered_tasks(settings):
    from contextlib import asynccontextmanager

    seen = []
    running = asyncio.Event()

    @asynccontextmanager
    async def lifespan(app, core):
        async def loop():
            running.set()
            try:
                await asyncio.Event().wait()
            finally:
                seen.append("stopped")

        core.tasks.run("worker", loop)
        yield {}
        seen.append("service lifespan closing")

    app = create_service_app(
        settings, title="t", description="d", routers=[], service_lifespan=lifespan
    )
    async with app_client(app) as client:
        await asyncio.wait_for(running.wait(), 5)
        metrics = (await client.get("/metrics")).text
        assert "background_task_failures_total" in metrics
    # The tasks stop before the service's lifespan closes what they use.
    assert seen == ["stopped", "service lifespan closing"]


async def _until(condition, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
