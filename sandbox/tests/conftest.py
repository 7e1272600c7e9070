"""Fixtures for the sandbox's own conformance tests (they drive the simulators over real HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sandbox.pytest_plugin import SandboxHandle, start_sandbox


def wait_for(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
    """Poll `fetch()` until `done(body)`; return the last body."""
    deadline = time.monotonic() + timeout
    while True:
        body = fetch()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


@pytest.fixture(scope="module")
def michigan() -> Iterator[SandboxHandle]:
    """A CG3 server shared by a module; tests reset its faults (see `clean_faults`)."""
    handle = start_sandbox("michigan", flavour="cg3", max_running_jobs_per_user=50, max_parallel_jobs=8, max_downloads=2)
    yield handle
    handle.stop()


@pytest.fixture
def alice(michigan: SandboxHandle) -> Iterator[httpx.Client]:
    michigan.admin.reset()
    with httpx.Client(base_url=michigan.base_url, headers={"X-Auth-Token": michigan.users[0].token}) as client:
        yield client
    michigan.admin.reset()
