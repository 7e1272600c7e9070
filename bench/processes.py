"""Helpers the benchmarks share to start real processes: a free port, and waiting until a
started server answers (or saying that it died)."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def free_port() -> int:
    from fedimpute_shared.embedded import free_port as _free_port

    return _free_port()


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Return once ``url`` answers; raise if ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own loopback URL)
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")
