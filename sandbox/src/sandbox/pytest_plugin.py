"""Start simulators from tests: `start_sandbox(...)` and the `sandbox_server` factory fixture.

The plugin is registered through the `pytest11` entry point of `fedimpute-sandbox`, so any
test in the workspace can ask for the fixture::

    def test_submit(sandbox_server):
        michigan = sandbox_server("michigan", flavour="cg3")       # fast timings by default
        token = michigan.users[0].token                            # "cloudgene-token-alice"
        httpx.get(f"{michigan.base_url}/api/v2/server/counters")
        michigan.admin.set(error_rate=1.0, error_statuses=[503])  # any fault knob
        michigan.admin.reset()                                     # back to normal

        wes = sandbox_server("wes", flavour="starter-kit")
        httpx.get(f"{wes.api_url}/service-info")                   # api_url includes /ga4gh/wes/v1

Every server runs in a background thread on a free port and is stopped when the test ends.

Real WES servers (sapporo, wes-service; see `sandbox.real_wes`) come from the `real_wes_server`
factory fixture, skipped only when the server is not installed (`make install` installs it)::

    def test_real(real_wes_server):
        node = real_wes_server("sapporo", url_prefix="/ga4gh/wes/v1")   # also served at the root
        httpx.get(f"{node.api_url}/service-info")
        node = real_wes_server("sapporo", service_info={...}, run_sh=Path("my-run.sh"))
        ref = real_wes_server("wes-service")                             # always /ga4gh/wes/v1
Keyword options are the fields of `CloudgeneOptions` / `WesOptions` (`users`, `panels`,
`timings`, `faults`, `max_downloads`, `tokens`, `namespace`, ...). `fast=True` (the default)
sets every duration not given in a `timings` dict to 0.05 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:  # the simulators are imported when a server is started, not at plugin load
    from sandbox.real_wes import RealWes
    from sandbox.server import RunningServer, Simulator
    from sandbox.users import User

__all__ = [
    "Admin",
    "SandboxHandle",
    "real_wes_server",
    "sandbox_server",
    "start_sandbox",
    "wait_for",
]

FAST_CLOUDGENE = {"queue_seconds": 0.05, "step_seconds": 0.05, "export_seconds": 0.05}
FAST_WES = {
    "preprocessing_seconds": 0.05,
    "queued_seconds": 0.05,
    "initializing_seconds": 0.05,
    "task_seconds": 0.05,
    "canceling_seconds": 0.05,
}


class Admin:
    """The `/_sandbox/faults` endpoint of one server, on its admin port (open during outages)."""

    def __init__(self, admin_url: str) -> None:
        self.url = f"{admin_url}/_sandbox/faults"

    def get(self) -> dict[str, Any]:
        return httpx.get(self.url).raise_for_status().json()  # type: ignore[no-any-return]

    def set(self, **knobs: Any) -> dict[str, Any]:
        """Merge `knobs` (fields of `sandbox.faults.Faults`) into the current faults."""
        return httpx.put(self.url, json=knobs).raise_for_status().json()  # type: ignore[no-any-return]

    def reset(self) -> dict[str, Any]:
        return httpx.delete(self.url).raise_for_status().json()  # type: ignore[no-any-return]


@dataclass
class SandboxHandle:
    """A running simulator: where it listens, who may call it, and its fault controls."""

    kind: str
    flavour: str
    base_url: str
    admin_url: str
    admin: Admin
    simulator: Simulator
    users: list[User]
    tokens: list[str]
    info: dict[str, Any]
    _running: RunningServer

    @property
    def api_url(self) -> str:
        """Cloudgene: `<base>/api/v2`; WES: `<base>/ga4gh/wes/v1` (namespaced for workbench)."""
        return self.base_url + ("/api/v2" if self.kind == "michigan" else self.info["prefix"])

    @property
    def port(self) -> int:
        return self._running.server.port

    def stop(self) -> None:
        self._running.stop()


def start_sandbox(
    kind: str, flavour: str | None = None, *, fast: bool = True, **options: Any
) -> SandboxHandle:
    """Build and start a simulator (`kind`: "michigan"/"cloudgene" or "wes") on a free port."""
    from sandbox.cloudgene import CloudgeneOptions, build_cloudgene
    from sandbox.server import RunningServer
    from sandbox.wes import WesOptions, build_wes

    if flavour is not None:
        options["flavour"] = flavour
    if kind in ("michigan", "cloudgene"):
        if fast and isinstance(options.get("timings", {}), dict):
            options["timings"] = {**FAST_CLOUDGENE, **options.get("timings", {})}
        cg_options = CloudgeneOptions.model_validate(options)
        simulator, users, tokens = (
            build_cloudgene(cg_options),
            cg_options.users,
            [u.token for u in cg_options.users],
        )
    elif kind == "wes":
        if fast and isinstance(options.get("timings", {}), dict):
            options["timings"] = {**FAST_WES, **options.get("timings", {})}
        wes_options = WesOptions.model_validate(options)
        simulator, users, tokens = build_wes(wes_options), [], wes_options.accepted_tokens()
    else:
        raise ValueError(f"unknown sandbox kind {kind!r}: use 'michigan' or 'wes'")
    running = RunningServer(simulator).start()
    host = running.server.host
    admin_url = f"http://{host}:{running.server.admin_port}"
    return SandboxHandle(
        kind="michigan" if kind == "cloudgene" else kind,
        flavour=simulator.flavour,
        base_url=f"http://{host}:{running.server.port}",
        admin_url=admin_url,
        admin=Admin(admin_url),
        simulator=simulator,
        users=list(users),
        tokens=tokens,
        info=simulator.info,
        _running=running,
    )


@pytest.fixture
def sandbox_server() -> Iterator[Callable[..., SandboxHandle]]:
    """Factory: `sandbox_server(kind, flavour=None, **options)`; every server stops after the test."""
    started: list[SandboxHandle] = []

    def factory(kind: str, flavour: str | None = None, **options: Any) -> SandboxHandle:
        handle = start_sandbox(kind, flavour, **options)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


@pytest.fixture
def real_wes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RealWes]]:
    """Factory: `real_wes_server(kind="sapporo", *, url_prefix=None, service_info=None,
    run_sh=None, extra_args=())` starts a real WES server on a free loopback port (see
    `sandbox.real_wes.start_real_wes`); the test is skipped if the server is not installed.
    Every server started is stopped after the test."""
    from sandbox.real_wes import WesPeerMissing, start_real_wes

    started: list[RealWes] = []

    def factory(kind: str = "sapporo", **options: Any) -> RealWes:
        try:
            server = start_real_wes(kind, tmp_path_factory.mktemp(kind), **options)  # type: ignore[arg-type]
        except WesPeerMissing as missing:
            pytest.skip(str(missing))
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def wait_for(
    fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """Poll `fetch()` every 20 ms until `done(body)` or `timeout`; return the last body."""
    deadline = time.monotonic() + timeout
    while True:
        body = fetch()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.02)
