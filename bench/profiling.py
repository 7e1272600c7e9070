"""Where a process's CPU goes, for the benchmarks: py-spy samples it while a load runs, and each
sampled stack is put in one named group (bench/gateway.py and bench/request_cost.py).

py-spy is not a project dependency (``uv venv /tmp/spy && uv pip install --python
/tmp/spy/bin/python py-spy``); the scripts take its path with ``--py-spy``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

Groups = Sequence[tuple[str, re.Pattern[str]]]


def record(
    py_spy: str,
    pid: int,
    seconds: float,
    load: Callable[[], object],
    rate: int = 250,
    keep: Path | None = None,
) -> list[tuple[list[str], int]]:
    """Samples ``pid`` for ``seconds`` while ``load()`` runs; each distinct stack (outermost
    frame first) with its sample count. The collapsed stacks are also written to ``keep``, for
    a flame graph."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        options = f"--rate {rate} --format raw --duration {int(seconds)} --nonblocking"
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--output", out.name, *options.split()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        load()
        spy.wait(60)
        text = Path(out.name).read_text()
    if keep is not None:
        keep.write_text(text)
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def group_of(frames: list[str], owners: Groups, layers: Groups, idle: str) -> str:
    """The stack's group: the first *owner* (logging, auth, ...) anywhere in it takes the whole
    stack; otherwise the *layer* of its deepest recognised frame; otherwise ``idle``."""
    for name, pattern in owners:
        if any(pattern.search(f) for f in frames):
            return name
    for frame in reversed(frames):
        for name, pattern in layers:
            if pattern.search(frame):
                return name
    return idle
