"""The benchmarks' one memory sampler: the resident memory of processes while something runs.

``with PeakRss({"file-manager": pid}) as rss: ...`` samples every ``interval`` seconds in a
thread; afterwards ``rss.baseline[name]`` is the memory at the start, ``rss.peak[name]`` the
highest sample, ``rss.peak_children[name]`` the highest total of its child processes (the
validator runs in one). ``high_water_mark(pid)`` is the kernel's own peak over the whole life of
a process (Linux ``VmHWM``), for when the window is the process's whole run.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

MiB = 1024 * 1024


class PeakRss:
    def __init__(self, pids: dict[str, int], interval: float = 0.05) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._interval = interval
        self.baseline = {name: proc.memory_info().rss for name, proc in self._procs.items()}
        self.peak = dict(self.baseline)
        self.peak_children: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def _sample(self) -> None:
        for name, proc in self._procs.items():
            try:
                self.peak[name] = max(self.peak[name], proc.memory_info().rss)
                children = sum(c.memory_info().rss for c in proc.children(recursive=True))
                self.peak_children[name] = max(self.peak_children[name], children)
            except psutil.Error:  # the process (or a child) ended between two samples
                pass


def high_water_mark(pid: int) -> int:
    """The highest resident memory of ``pid`` since it started, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmHWM for process {pid}")
