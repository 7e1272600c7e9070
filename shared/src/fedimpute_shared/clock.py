"""The platform's clock: wall time (``utcnow``), a monotonic clock and ``sleep``, behind one
replaceable object.

Production code reads time through :func:`current_clock` (``fedimpute_shared.db.utcnow`` does,
and the background-task helper sleeps through it), so a test can install a
:class:`~fedimpute_shared.testing.clock.ManualClock` with :func:`use_clock` and move time
forward at once instead of sleeping: a session's maximum age, a lockout period or a periodic
task's interval are then tested without waiting, and without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

__all__ = ["Clock", "current_clock", "use_clock"]


class Clock:
    """The real clock. Subclasses (test clocks) override all three methods together."""

    def now(self) -> datetime:
        """Timezone-aware now in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals and deadlines)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (on this clock)."""
        await asyncio.sleep(seconds)


_current: Clock = Clock()


def current_clock() -> Clock:
    """The clock in use (the system clock unless a test installed another)."""
    return _current


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the process's clock while the block runs (tests)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
