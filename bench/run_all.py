"""`make bench`: run every benchmark, one after the other, and rewrite the summary at the top of
docs/benchmarks.md — each figure beside its limit (as a ratio) and its goal, the machine it ran
on, and the command that reproduces it.

    .venv/bin/python bench/run_all.py                 # every benchmark, quick profiles (~20 min)
    .venv/bin/python bench/run_all.py --only gateway upload
    .venv/bin/python bench/run_all.py --full          # the full profiles of docs/benchmarks.md

The benchmarks run one at a time because they measure speed on the machine's shared CPUs. Each
writes its figures with ``--json`` (the rows of bench/results.py); its whole output goes to
``var/bench/logs/NAME.log``. A benchmark that fails leaves its previous rows in the summary,
marked with the failure, and makes the run exit non-zero: the table never silently mixes runs.
The sections below the summary (how each benchmark works, what was tried, full runs) are
written by hand and left as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
LOGS = ROOT / "var" / "bench" / "logs"
STATE = ROOT / "docs" / "benchmarks-summary.json"  # the last rows of each benchmark
BEGIN = "<!-- make bench: summary begins (written by bench/run_all.py; edits here are lost) -->"
END = "<!-- make bench: summary ends -->"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    script: str
    quick: str  # the arguments of `make bench`
    full: str  # those of docs/benchmarks.md's full runs (`--full`)
    timeout_s: int

    def argv(self, full: bool) -> list[str]:
        return ["bench/" + self.script, *shlex.split(self.full if full else self.quick)]


BENCHES = [
    Bench(
        "health-sweep",
        "Health sweep (service-registry)",
        "health_sweep.py",
        "--services 1000 --latency 0.5 --concurrency 200 --sweeps 3 --sequential-services 20",
        "--services 1000 --latency 0.5 --concurrency 200 --sequential-services 100",
        600,
    ),
    Bench(
        "gateway",
        "API gateway",
        "gateway.py",
        "--quick",
        "--seconds 15 --rounds 3 --connections 50 --threads 2 --paced-share 0.5 --download-gib 1",
        1200,
    ),
    Bench(
        "request-cost",
        "One request inside each service",
        "request_cost.py",
        "--quick",
        "--seconds 3",
        1200,
    ),
    Bench(
        "upload",
        "Uploads and VCF validation (file-manager)",
        "upload.py",
        "--quick",
        "--sizes-gib 1 5",
        1800,
    ),
    Bench(
        "startup",
        "Idle memory and start-up",
        "startup.py",
        "--quick",
        "--runs 2",
        900,
    ),
    Bench(
        "polling",
        "Job polling (job-processor)",
        "polling.py",
        "--jobs 300 --remote-jobs 3 --latency-ms 50 --cycles 1",
        "--jobs 2000 --remote-jobs 10 --latency-ms 50 --cycles 2",
        1800,
    ),
    Bench(
        "websocket",
        "Live push to WebSockets (notification)",
        "websocket.py",
        "--clients 1000 --rounds 3 --pause 4",
        "--clients 5000 --rounds 6 --pause 20",
        1800,
    ),
    Bench(
        "imputation",
        "Imputation node: accuracy and overhead",
        "imputation.py",
        "--quick",
        "--sizes ci demo --repeat 3",
        3600,
    ),
]


@dataclass
class Outcome:
    bench: Bench
    command: str
    seconds: float
    error: str | None
    rows: list[dict[str, Any]]
    finished: str  # UTC time of the run that produced the rows


def run(bench: Bench, full: bool) -> Outcome:
    """Run one benchmark with ``--json`` into a scratch file; its output goes to its log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out = LOGS / f"{bench.name}.json"
    out.unlink(missing_ok=True)
    argv = bench.argv(full)
    command = ".venv/bin/python " + shlex.join(argv)
    print(f"== {bench.name}: {command}", flush=True)
    started = time.monotonic()
    error = None
    with (LOGS / f"{bench.name}.log").open("w") as log:
        try:
            code = subprocess.call(
                [sys.executable, *argv, "--json", str(out)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=bench.timeout_s,
            )
            if code:
                error = f"exit {code}"
        except subprocess.TimeoutExpired:
            error = f"timed out after {bench.timeout_s} s"
    rows: list[dict[str, Any]] = []
    if error is None:
        try:
            rows = json.loads(out.read_text())
        except (OSError, ValueError) as exc:
            error = f"no figures written ({exc})"
    seconds = time.monotonic() - started
    print(f"   {error or 'ok'} in {seconds:.0f} s (log: {LOGS / bench.name}.log)", flush=True)
    return Outcome(bench, command, seconds, error, rows, _now())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine() -> str:
    """One line saying what the figures were measured on."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024**2:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def git_commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


# ------------------------------------------------------------------ the summary


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "—"}[met]


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (a figure's path may contain a shell pipe)."""
    return text.replace("|", "\\|")


def table(outcomes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| benchmark | path | figure | limit | x limit | goal | verdict |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for outcome in outcomes:
        name = outcome["title"]
        if not outcome["rows"]:
            lines.append(f"| {name} | ({outcome['error'] or 'no figures'}) | | | | | |")
        for row in outcome["rows"]:
            limit = _cell(row.get("limit") or "—")
            if row.get("limit_value") is not None:
                limit += f" ({_number(row['limit_value'])} {row['unit']})"
            ratio = row.get("ratio")
            lines.append(
                f"| {name} | {_cell(row['path'])} | {_number(row['value'])} {row['unit']} | {limit} "
                f"| {'—' if ratio is None else _number(ratio) + 'x'} | {row.get('goal') or '—'} "
                f"| {_verdict(row.get('met'))} |"
            )
    return lines


def summary(state: dict[str, Any]) -> str:
    outcomes = [state[b.name] for b in BENCHES if b.name in state]
    rows = [row for o in outcomes for row in o["rows"] if row.get("met") is not None]
    met = sum(1 for row in rows if row["met"])
    machines = "; ".join(sorted({o["machine"] for o in outcomes})) or machine()
    lines = [
        BEGIN,
        "## Summary (`make bench`)",
        "",
        f"Goals met: **{met} of {len(rows)}**. Each figure is shown beside its limit — what the "
        "path is measured against (the ideal, the bare tool, the direct call) — as a multiple "
        "of it, and beside its goal. Rewritten by `make bench` (`bench/run_all.py`, quick "
        "profiles; `--full` for the full ones); the sections below explain each benchmark.",
        "",
        *table(outcomes),
        "",
        f"Machine: {machines}. The benchmarks ran one after the other; the load average "
        "(1 min) before and after each says whether anything else shared the CPUs.",
        "",
        "| benchmark | command | ran | took | load before → after |",
        "|---|---|---|---:|---|",
    ]
    for outcome in outcomes:
        status = outcome["finished"] + (
            f", **failed: {outcome['error']}** (rows from an earlier run)"
            if outcome["error"]
            else ""
        )
        lines.append(
            f"| {outcome['title']} | `{outcome['command']}` | {status} (commit "
            f"{outcome['commit']}) | {outcome['seconds']:.0f} s | {outcome['load']} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def rewrite_doc(text: str, block: str) -> str:
    """Put ``block`` in place of the previous summary, or after the document's introduction
    (before its first section) the first time."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    index = text.find("\n## ")
    if index < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    return text[: index + 1] + block + "\n\n" + text[index + 1 :]


def record(state: dict[str, Any], outcome: Outcome, load: str) -> None:
    """Keep the new rows; a failed run keeps the previous rows, marked with the failure."""
    previous = state.get(outcome.bench.name, {})
    failed = outcome.error is not None
    state[outcome.bench.name] = {
        "title": outcome.bench.title,
        "command": outcome.command,
        "seconds": outcome.seconds,
        "error": outcome.error,
        "rows": previous.get("rows", []) if failed else outcome.rows,
        "finished": previous.get("finished", outcome.finished) if failed else outcome.finished,
        "commit": previous.get("commit", "—") if failed else git_commit(),
        "machine": machine(),
        "load": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES])
    parser.add_argument("--full", action="store_true", help="the full profiles (hours)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ as it is")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the summary from the last figures"
    )
    args = parser.parse_args()
    state: dict[str, Any] = json.loads(STATE.read_text()) if STATE.exists() else {}
    if args.render:
        DOC.write_text(rewrite_doc(DOC.read_text(), summary(state)))
        return 0
    failures = 0
    for bench in BENCHES:
        if args.only and bench.name not in args.only:
            continue
        before = os.getloadavg()[0]
        outcome = run(bench, args.full)
        failures += outcome.error is not None
        record(state, outcome, f"{before:.1f} → {os.getloadavg()[0]:.1f}")
        if not args.no_write:  # after each benchmark: a later failure loses nothing
            STATE.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n")
            DOC.write_text(rewrite_doc(DOC.read_text(), summary(state)))
    print(summary(state))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
