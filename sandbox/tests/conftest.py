"""Fixtures for the sandbox's own conformance tests (they drive the simulators over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.pytest_plugin import SandboxHandle, start_sandbox


@pytest.fixture(scope="module")
def michigan() -> Iterator[SandboxHandle]:
    """A CG3 server shared by a module; tests reset its faults (see `clean_faults`)."""
    # States that tests must observe by polling last long enough for a loaded CI machine.
    timings = {"queue_seconds": 0.6, "step_seconds": 0.05, "export_seconds": 0.6}
    handle = start_sandbox(
        "michigan",
        flavour="cg3",
        timings=timings,
        max_running_jobs_per_user=50,
        max_parallel_jobs=8,
        max_downloads=2,
    )
    yield handle
    handle.stop()


@pytest.fixture
def alice(michigan: SandboxHandle) -> Iterator[httpx.Client]:
    michigan.admin.reset()
    with httpx.Client(
        base_url=michigan.base_url, headers={"X-Auth-Token": michigan.users[0].token}
    ) as client:
        yield client
    michigan.admin.reset()
