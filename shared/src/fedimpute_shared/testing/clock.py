"""A clock tests move by hand: time passes only when the test says so, at once.

Installed with :func:`fedimpute_shared.clock.use_clock` (the ``clock`` fixture does it), it is
what ``utcnow()`` returns and what background tasks sleep on. ``await clock.advance(60)`` moves
wall and monotonic time by a minute, wakes every sleeper whose time has come, and lets them run.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta

from fedimpute_shared.clock import Clock

__all__ = ["ManualClock"]


class ManualClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._monotonic = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._monotonic + seconds, next(self._order), wake))
        await wake

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking (in order) every sleeper due by then."""
        target = self._monotonic + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, wake = heapq.heappop(self._sleepers)
            self._step_to(due)
            if not wake.done():
                wake.set_result(None)
            await settle()
        self._step_to(target)
        await settle()

    def _step_to(self, monotonic: float) -> None:
        self._now += timedelta(seconds=monotonic - self._monotonic)
        self._monotonic = monotonic


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until it waits on something (a few event-loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
