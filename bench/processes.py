"""Helpers the benchmarks share to start real processes: a free port, waiting until a
started server answers (or saying that it died), and a server started for the length of a
``with`` block."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


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


@contextmanager
def started(args: list[str], env: dict[str, str], health_url: str) -> Iterator[int]:
    """Run ``args`` (with ``env`` on top of ours) until the block ends; yields its pid once
    ``health_url`` answers. Its output goes to a scratch file (a full pipe would block it)."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=log)
        try:
            wait_http(health_url, process)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
