"""The embedded PostgreSQL's start waits out a long crash recovery (bounded by time, not tries)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fedimpute_shared import embedded


class Clock:
    """time.monotonic and time.sleep on a fake clock: the test takes no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Recovering:
    """pgserver meeting a postmaster that is ready only after ``ready_at`` seconds."""

    def __init__(self, clock: Clock, ready_at: float) -> None:
        self.clock, self.ready_at, self.calls = clock, ready_at, 0

    def get_server(self, pgdata: str, cleanup_mode: str) -> str:
        self.calls += 1
        if self.calls == 1:
            self.clock.now += 10  # the first attempt runs pg_ctl start, which gives up after 10 s
            raise subprocess.TimeoutExpired("pg_ctl", 10)
        if self.clock.now < self.ready_at:
            raise AssertionError  # postmaster.pid says "starting"
        return "server"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(embedded.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(embedded.time, "sleep", fake.sleep)
    return fake


def test_a_recovery_longer_than_a_minute_is_waited_for(clock: Clock) -> None:
    # Twelve quick attempts (the old bound) covered only a minute of a postmaster still starting.
    pgserver: Any = Recovering(clock, ready_at=150)
    assert embedded._start_pgserver(pgserver, Path("pgdata")) == "server"
    assert 150 <= clock.now < 160


def test_a_postmaster_that_never_gets_ready_fails_after_the_deadline(clock: Clock) -> None:
    pgserver: Any = Recovering(clock, ready_at=10_000)
    with pytest.raises(AssertionError):
        embedded._start_pgserver(pgserver, Path("pgdata"), within=300)
    assert 295 <= clock.now <= 300
