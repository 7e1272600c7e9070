"""Background work of a service, run by the app factory for as long as the app runs.

A service registers its background work in its lifespan on ``core.tasks`` (a
:class:`BackgroundTasks`); :func:`fedimpute_shared.app.create_service_app` starts it once the
service's lifespan has set everything up and stops it before that lifespan closes its resources.
Two shapes cover the platform's needs:

- :meth:`BackgroundTasks.every`: call a function every N seconds (a sweep, a reaper, the outbox
  relay). A failed call is logged and counted, and the next call comes at the next interval.
  ``single=True`` runs each call under a Postgres advisory lock named after the task, so however
  many replicas run, one of them does a given round and the others skip it.
- :meth:`BackgroundTasks.spawn`: one run of something, now, in the background (an on-demand
  sweep a request asked for); kept referenced until it ends, its error logged, cancelled on stop.
- :meth:`BackgroundTasks.run`: a long-running loop (a stream consumer, a pub/sub listener). If
  it raises, the error is logged and the loop is started again after a delay that doubles up to
  a ceiling, so a crash never ends the work and a persistent fault does not spin.

Stopping cancels every task and waits for it (``stop_timeout`` at most), cancelling again a task
that is still running. A cancellation can be swallowed below us: on Python 3.11 a cancel that
lands while an ``asyncio.timeout`` expires (redis-py and asyncpg use them) comes out as
``TimeoutError`` — an ``OSError`` many handlers catch as "the server is down". So every loop here
also checks :func:`stopping` (the task's pending cancellation count) before it goes round again;
without it a stopped app's relay kept running, holding its advisory lock and publishing other
apps' events to its own stream. A task whose loop ends on a flag gives an ``on_stop`` callback.
Sleeps go through :func:`fedimpute_shared.clock.current_clock`, so tests drive intervals with a
manual clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from fedimpute_shared.clock import current_clock
from fedimpute_shared.db import advisory_lock, lock_key

__all__ = [
    "BackgroundTasks",
    "Interval",
    "TaskMetrics",
    "cancel_and_wait",
    "jittered",
    "stopping",
]

logger = logging.getLogger(__name__)

Interval = float | Callable[[], float]
"""Seconds between calls: a number, or a function giving the next delay (jitter)."""


def stopping() -> bool:
    """Whether the current task was asked to stop (cancelled), even if a library below swallowed
    the ``CancelledError`` (see the module docstring)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass
class _Task:
    name: str
    loop: Callable[[], Coroutine[Any, Any, None]]
    on_stop: Callable[[], None] | None


class TaskMetrics:
    """Counters of the background tasks of one app (registered once per app)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.failures = Counter(
            "background_task_failures_total",
            "Background task runs that raised, by task.",
            ["task"],
            registry=registry,
        )
        self.skipped = Counter(
            "background_task_rounds_skipped_total",
            "Rounds of single-replica tasks skipped because another replica held the lock.",
            ["task"],
            registry=registry,
        )


class BackgroundTasks:
    """The background work of one app (see the module docstring)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine | None = None,
        metrics: TaskMetrics | None = None,
        restart_delay: float = 1.0,
        max_restart_delay: float = 60.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._engine = engine
        self._metrics = metrics or TaskMetrics(None)
        self._restart_delay = restart_delay
        self._max_restart_delay = max_restart_delay
        self._stop_timeout = stop_timeout
        self._registered: list[_Task] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._spawned: set[asyncio.Task[Any]] = set()

    @property
    def names(self) -> list[str]:
        """The registered tasks' names, in registration order."""
        return [task.name for task in self._registered]

    @property
    def running(self) -> bool:
        return bool(self._running)

    def every(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        *,
        interval: Interval,
        single: bool = False,
        first_after: Interval | None = None,
    ) -> None:
        """Call ``work()`` every ``interval`` seconds while the app runs.

        The first call comes at once, or after ``first_after`` seconds. ``single=True``: each
        call runs only while this replica holds the advisory lock ``lock_key(name)`` (a round
        another replica holds is skipped and counted); it needs the app's database engine.
        """
        if single and self._engine is None:
            raise ValueError(f"{name}: single=True needs a database engine")
        call = self._locked(name, work) if single else work

        async def loop() -> None:
            if first_after is not None:
                await current_clock().sleep(_seconds(first_after))
            while not stopping():
                try:
                    await call()
                except Exception:
                    if stopping():
                        break
                    self._metrics.failures.labels(name).inc()
                    logger.exception("background task %s failed; next run in one interval", name)
                if stopping():
                    break
                await current_clock().sleep(_seconds(interval))

        self._register(_Task(name, loop, None))

    def run(
        self,
        name: str,
        work: Callable[[], Awaitable[None]],
        *,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """Run ``work()`` (a long-running loop) while the app runs; restart it if it raises.

        A ``work()`` that returns is finished and not restarted. ``on_stop`` is called before
        the task is cancelled, for loops that end on a flag rather than on cancellation.
        """

        async def loop() -> None:
            delay = self._restart_delay
            while not stopping():
                started = current_clock().monotonic()
                try:
                    await work()
                    return
                except Exception:
                    if stopping():
                        break
                    self._metrics.failures.labels(name).inc()
                    if current_clock().monotonic() - started >= self._max_restart_delay:
                        delay = self._restart_delay  # it ran well for a while: a fresh fault
                    logger.exception(
                        "background task %s crashed; restarting in %.1f s", name, delay
                    )
                await current_clock().sleep(delay)
                delay = min(delay * 2, self._max_restart_delay)

        self._register(_Task(name, loop, on_stop))

    def spawn(self, name: str, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` once, in the background, now; it is cancelled if the app stops first."""
        task = asyncio.create_task(work, name=name)
        self._spawned.add(task)
        task.add_done_callback(self._spawn_done)
        return task

    def _spawn_done(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._metrics.failures.labels(task.get_name()).inc()
            logger.error("background run %s failed", task.get_name(), exc_info=error)

    async def start(self) -> None:
        """Start every registered task (the app factory calls this)."""
        for task in self._registered:
            if task.name not in self._running:
                self._running[task.name] = asyncio.create_task(task.loop(), name=task.name)

    async def stop(self) -> None:
        """Ask every task to stop, cancel it, and wait ``stop_timeout`` at most."""
        running, self._running = self._running, {}
        for task in self._registered:
            if task.on_stop is not None and task.name in running:
                task.on_stop()
        handles = [*running.values(), *self._spawned]
        if not handles:
            return
        done, pending = await cancel_and_wait(handles, self._stop_timeout)
        for handle in pending:
            logger.warning("background task %s did not stop in time", handle.get_name())
        for handle in done:
            if not handle.cancelled() and (error := handle.exception()) is not None:
                logger.warning("background task %s ended with %r", handle.get_name(), error)

    def _register(self, task: _Task) -> None:
        if task.name in self.names:
            raise ValueError(f"a background task named {task.name!r} is already registered")
        if self._running:
            raise RuntimeError("register background tasks before the app starts them")
        self._registered.append(task)

    def _locked(
        self, name: str, work: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[object]]:
        engine, key = self._engine, lock_key(name)
        assert engine is not None

        async def call() -> None:
            async with advisory_lock(engine, key) as acquired:
                if not acquired:
                    self._metrics.skipped.labels(name).inc()
                    return
                await work()

        return call


async def cancel_and_wait(
    handles: Collection[asyncio.Task[Any]], within: float
) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
    """Cancel ``handles`` and wait ``within`` seconds at most for them to end, cancelling again
    every 0.2 s those still running (a first cancellation may have been swallowed)."""
    deadline = asyncio.get_running_loop().time() + within
    pending: set[asyncio.Task[Any]] = set(handles)
    done: set[asyncio.Task[Any]] = set()
    while pending:
        for handle in pending:
            handle.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        finished, pending = await asyncio.wait(pending, timeout=min(0.2, left))
        done |= finished
    return done, pending


def _seconds(interval: Interval) -> float:
    return max(0.0, interval() if callable(interval) else interval)


def jittered(interval: float, ratio: float) -> Callable[[], float]:
    """An :data:`Interval` of ``interval`` ± ``ratio`` (so replicas and restarts spread out)."""
    spread = interval * ratio

    def next_delay() -> float:
        return interval + random.uniform(-spread, spread)  # noqa: S311 (not crypto)

    return next_delay
