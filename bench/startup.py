"""Benchmark: how long `make up` takes until every service answers, and each service's idle memory.

Runs the real launcher (``scripts/fleet.py up``, what ``make up`` runs) on its own ports and
state directory, with the embedded PostgreSQL and Redis as a developer gets them:

- **cold**: a fresh state directory (PostgreSQL's initdb, the seven databases created and
  migrated from nothing, secrets generated, the demo data seeded);
- **warm**: the same directory again (the everyday ``make up``: everything exists already).

For each run it records the seconds from launching until each of the seven services answers
``GET /ready`` with 200 (polled every 50 ms from this process), and until the launcher prints
its summary ("FedImpute is up": the simulators, the imputation node, the registrations and
the demo data are done too). Once the summary is out and the fleet has idled ``--idle``
seconds, it reads each service process's resident memory (RSS, and USS: the pages no other
process shares).

From the repository root:

    .venv/bin/python bench/startup.py --runs 3               # one cold run, then three warm ones
    .venv/bin/python bench/startup.py --quick --json out.json   # make bench: cold + 1 warm, < 3 min
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from results import Row, write_rows  # bench/results.py (the scripts run from bench/)

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python bench/startup.py"
MiB = 1024 * 1024
RSS_GOAL_MIB = 80.0
UP_GOAL_SECONDS = 15.0
SUMMARY_LINE = "FedImpute is up"

sys.path.insert(0, str(ROOT / "shared" / "src"))
from fedimpute_shared.fleet import FLEET  # noqa: E402 (after the path for a bare checkout)

SERVICES = {s.name: s for s in FLEET if s.installed}


@dataclass
class Run:
    """One launch: when each service answered, when the summary came, the idle memory."""

    kind: str  # "cold" or "warm"
    load: str  # the load average when it started
    ready_at: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # of the launcher and everything it started, until all answered
    summary_at: float | None = None
    rss_mb: dict[str, float] = field(default_factory=dict)
    uss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def all_ready(self) -> float:
        return max(self.ready_at.values())


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Launcher:
    """``scripts/fleet.py up`` as a child process, its output kept (and the summary noticed)."""

    def __init__(self, var: Path, offset: int, extra_env: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env |= {"FLEET_VAR_DIR": str(var), "FLEET_PORT_OFFSET": str(offset)} | extra_env
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "fleet.py"), "up"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []  # "<seconds since launch> <line>"
        self.summary = threading.Event()
        self.summary_at: float | None = None
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(f"{time.monotonic() - self.started:7.2f} {line}")
            if SUMMARY_LINE in line and self.summary_at is None:
                self.summary_at = time.monotonic() - self.started
                self.summary.set()
        self.summary.set()  # the launcher ended (failed): wake whoever waits

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the launcher, of the children it waited for (the
        ``migrate`` processes) and of every process it started that still runs: the work of
        the start whatever the machine's load (the wall time is that work shared out over the
        CPUs the neighbours leave)."""
        launcher = psutil.Process(self.process.pid)
        total = _cpu(launcher)
        for child in launcher.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += _cpu(child)
        return total

    def service_pids(self) -> dict[str, int]:
        """The pid of each service's ``python -m <package> serve`` process."""
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                cmdline = child.cmdline()
            except psutil.Error:
                continue
            for name, entry in SERVICES.items():
                if entry.package in cmdline and "serve" in cmdline:
                    found[name] = child.pid
        return found

    def failed(self) -> str:
        return "".join(self.lines[-40:])

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._pump.join(timeout=10)


def _cpu(process: psutil.Process) -> float:
    """User + system time of ``process`` and of the children it has waited for."""
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except OSError:
        return False


def watch_ready(launcher: Launcher, offset: int, timeout: float) -> dict[str, float]:
    """Seconds since the launch until each service's ``/ready`` first answers 200."""
    waiting = {name: f"http://127.0.0.1:{s.port + offset}/ready" for name, s in SERVICES.items()}
    ready: dict[str, float] = {}
    deadline = launcher.started + timeout
    while waiting and time.monotonic() < deadline:
        if launcher.process.poll() is not None:
            launcher._pump.join(timeout=5)
            if "of the ports it needs" in launcher.failed():
                raise PortTaken(launcher.failed())
            raise RuntimeError("the launcher exited during start-up:\n" + launcher.failed())
        for name, url in list(waiting.items()):
            if answers(url):
                ready[name] = time.monotonic() - launcher.started
                del waiting[name]
        time.sleep(0.05)
    if waiting:
        raise RuntimeError(f"not ready within {timeout:.0f} s: {sorted(waiting)}")
    return ready


class PortTaken(RuntimeError):
    """The launcher refused to start: a port it needs was taken (with offsets that put the
    fleet in the ephemeral range, another process's outgoing connection can hold one)."""


def measure(kind: str, var: Path, offset: int, idle: float, extra_env: dict[str, str]) -> Run:
    for _attempt in range(5):
        try:
            return _measure(kind, var, offset, idle, extra_env)
        except PortTaken as exc:
            print(f"retrying: {str(exc).strip().splitlines()[-4]}", file=sys.stderr)
            time.sleep(3)
    raise RuntimeError("a port the fleet needs stayed taken")


def _measure(kind: str, var: Path, offset: int, idle: float, extra_env: dict[str, str]) -> Run:
    run = Run(kind, load_average())
    launcher = Launcher(var, offset, extra_env)
    try:
        run.ready_at = watch_ready(launcher, offset, timeout=600)
        run.cpu_seconds = launcher.cpu_seconds()
        launcher.summary.wait(timeout=600)
        if launcher.summary_at is None:
            raise RuntimeError("no summary from the launcher:\n" + launcher.failed())
        run.summary_at = launcher.summary_at
        time.sleep(idle)
        for name, pid in launcher.service_pids().items():
            info = psutil.Process(pid).memory_full_info()
            run.rss_mb[name] = info.rss / MiB
            run.uss_mb[name] = info.uss / MiB
    finally:
        launcher.stop()
        if log_dir := os.environ.get("BENCH_STARTUP_LOG_DIR"):
            Path(log_dir, f"{kind}-{time.time():.0f}.log").write_text("".join(launcher.lines))
    print(
        f"{kind}: all ready {run.all_ready:.1f} s ({run.cpu_seconds:.1f} s CPU), "
        f"summary {run.summary_at:.1f} s, load {run.load}",
        file=sys.stderr,
        flush=True,
    )
    return run


# ------------------------------------------------------------------ report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rows(cold: Run, warm: list[Run]) -> list[Row]:
    """The make-bench rows: one per service (idle RSS) and the start-up times."""
    out = []
    for name in SERVICES:
        value = round(median([r.rss_mb[name] for r in warm if name in r.rss_mb]), 1)
        out.append(_row(f"idle RSS after start: {name}", value, "MiB", RSS_GOAL_MIB))
    warm_up = round(median([r.all_ready for r in warm]), 1)
    out.append(
        _row("`make up` until every service answers (warm var/)", warm_up, "s", UP_GOAL_SECONDS)
    )
    out.append(
        _row("`make up` until every service answers (cold var/)", round(cold.all_ready, 1), "s")
    )
    warm_cpu = round(median([r.cpu_seconds for r in warm]), 1)
    out.append(_row("CPU time of a warm `make up` until every service answers", warm_cpu, "s"))
    return out


def _row(path: str, value: float, unit: str, goal: float | None = None) -> Row:
    """A row whose limit is its goal (an upper bound), or a figure without a goal."""
    if goal is None:
        return Row(path, value, unit)
    return Row(
        path,
        value,
        unit,
        limit=f"goal {goal:g} {unit}",
        limit_value=goal,
        goal=f"<= {goal:g} {unit}",
        met=value <= goal,
    )


def markdown(cold: Run, warm: list[Run]) -> str:
    """One column per run: when everything answered, then each service's ready time and idle
    memory (RSS / USS)."""
    runs = [cold, *warm]

    def line(label: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        line("", [f"{r.kind} (load {r.load})" for r in runs]),
        "|---|" + "---:|" * len(runs),
        line("every service answers `/ready`", [f"{r.all_ready:.1f} s" for r in runs]),
        line("CPU time of the start until then", [f"{r.cpu_seconds:.1f} s" for r in runs]),
        line("launcher's summary printed", [f"{r.summary_at or float('nan'):.1f} s" for r in runs]),
    ]
    for name in SERVICES:
        cells = [
            f"{r.ready_at.get(name, float('nan')):.1f} s, "
            f"{r.rss_mb.get(name, float('nan')):.0f} / {r.uss_mb.get(name, float('nan')):.0f}"
            for r in runs
        ]
        lines.append(line(f"{name}: ready at, RSS / USS MiB", cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument("--idle", type=float, default=15, help="seconds idle before the RSS")
    parser.add_argument(
        "--offset", type=int, default=int(os.environ.get("BENCH_PORT_OFFSET", 19000))
    )
    parser.add_argument("--quick", action="store_true", help="cold + 1 warm run (make bench)")
    parser.add_argument("--json", type=Path, help="write the make-bench rows here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.idle = 1, 5
    base = Path(tempfile.mkdtemp(prefix="fedimpute-startup-"))
    base.chmod(0o755)  # the embedded PostgreSQL runs as another user when we are root
    var = base / "var"
    # The cold run does not wait for the demo jobs (they finish in the background; the warm
    # runs find them done and submit nothing).
    env = {"FLEET_DEMO_JOBS_WAIT_SECONDS": "0"}
    try:
        cold = measure("cold", var, args.offset, args.idle, env)
        warm = [measure("warm", var, args.offset, args.idle, env) for _ in range(args.runs)]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"    {COMMAND} {' '.join(sys.argv[1:])}\n")
    print(markdown(cold, warm))
    write_rows(args.json, rows(cold, warm))


if __name__ == "__main__":
    main()
