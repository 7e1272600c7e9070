"""Serving a simulator: the public port (which a "refuse" outage really closes), the admin port,
and a thread runner for tests.

uvicorn serves the same ASGI app on two listeners. The public listener is stopped when the
faults ask for a "refuse" outage, so clients get "connection refused", and started again on the
same port when the outage ends (by an admin call on the admin port or after `outage_seconds`).
Lifespan is off: the simulator's state lives in the `Simulator` object, which outlives listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from sandbox.faults import Faults, FaultState

__all__ = ["RunningServer", "SandboxServer", "Simulator"]


@dataclass
class Simulator:
    """A built simulator: its ASGI app (faults already wired), its knobs, and its clean-up."""

    kind: str
    flavour: str
    app: ASGIApp
    faults: FaultState
    shutdown: Callable[[], Awaitable[None]]
    info: dict[str, Any] = field(default_factory=dict)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the runner owns signals (several servers share a loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Listener:
    """One uvicorn server on one socket."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))

    async def wait_started(self) -> None:
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True
        await self.task


class SandboxServer:
    """Runs one simulator on `host:port` (0 picks a free port) plus an optional admin port."""

    def __init__(
        self,
        simulator: Simulator,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = None,
    ) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self._public: _Listener | None = None
        self._admin: _Listener | None = None
        self._outage_timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Future[None]] = set()

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until `stop` is set, following outage changes; then shut the simulator down."""
        faults = self.simulator.faults
        faults.add_applier(self._apply)
        if self.admin_port is not None:
            admin_sock = _bind(self.host, self.admin_port)
            self.admin_port = admin_sock.getsockname()[1]
            self._admin = _Listener(self.simulator.app, admin_sock)
            await self._admin.wait_started()
        public_sock = _bind(self.host, self.port)
        self.port = public_sock.getsockname()[1]
        await self._apply(faults.current, public_sock)
        if on_ready:
            on_ready()
        await stop.wait()
        if self._outage_timer:
            self._outage_timer.cancel()
        for listener in (self._public, self._admin):
            if listener:
                await listener.stop()
        await self.simulator.shutdown()

    async def _apply(self, faults: Faults, sock: socket.socket | None = None) -> None:
        """Open or close the public port to match `faults.outage`; arm the outage timer."""
        async with self._lock:
            await self._apply_locked(faults, sock)

    async def _apply_locked(self, faults: Faults, sock: socket.socket | None) -> None:
        if self._outage_timer:
            self._outage_timer.cancel()
            self._outage_timer = None
        if faults.outage != "none" and faults.outage_seconds:
            loop = asyncio.get_running_loop()
            self._outage_timer = loop.call_later(
                faults.outage_seconds,
                lambda: self._pending.add(asyncio.ensure_future(self._end_outage())),
            )
        if faults.outage == "refuse":
            if sock is not None:
                sock.close()
            if self._public:
                await self._public.stop()
                self._public = None
            return
        if self._public is None:
            self._public = _Listener(self.simulator.app, sock or _bind(self.host, self.port))
            await self._public.wait_started()

    async def _end_outage(self) -> None:
        self.simulator.faults.update({"outage": "none", "outage_seconds": None})
        await self.simulator.faults.apply()


class RunningServer:
    """A simulator served from a background thread (own event loop), for tests and scripts."""

    def __init__(
        self,
        simulator: Simulator,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = 0,
    ) -> None:
        self.server = SandboxServer(simulator, host, port, admin_port)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"sandbox-{simulator.kind}", daemon=True
        )

    def start(self, timeout: float = 10) -> RunningServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("sandbox server did not start in time")
        if self._error:
            raise RuntimeError("sandbox server failed to start") from self._error
        return self

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.server.run(self._stop, self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    def stop(self, timeout: float = 10) -> None:
        if self._loop and self._stop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
