"""Issue 15: an upload's buffer is hashed and written while the next one arrives
(``uploads.sink.Overlap``), in order, with errors surfacing and aborts waiting for the write."""

from __future__ import annotations

import asyncio

import pytest

from file_manager.uploads.sink import Overlap


async def test_the_next_buffer_arrives_while_the_work_runs_and_the_order_is_kept():
    overlap = Overlap()
    release = asyncio.Event()
    done: list[int] = []

    async def work(n: int) -> None:
        if n == 0:
            await release.wait()
        done.append(n)

    await overlap.submit(lambda: work(0))  # returns while buffer 0's work is still running
    assert done == []
    second = asyncio.create_task(overlap.submit(lambda: work(1)))
    await asyncio.sleep(0.01)
    assert not second.done()  # never two pieces of work at once
    release.set()
    await second
    await overlap.wait()
    assert done == [0, 1]


async def test_an_error_surfaces_at_the_next_submit_or_wait():
    overlap = Overlap()

    async def fail() -> None:
        raise OSError("disk full")

    await overlap.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        await overlap.submit(fail)  # the first one's error; this one is not started
    await overlap.wait()  # nothing in flight
    await overlap.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        await overlap.wait()


async def test_settle_waits_for_the_running_work_and_keeps_quiet():
    overlap = Overlap()
    finished = asyncio.Event()

    async def slow_failure() -> None:
        await asyncio.sleep(0.05)
        finished.set()
        raise OSError("late")

    await overlap.submit(slow_failure)
    await overlap.settle()
    assert finished.is_set()
