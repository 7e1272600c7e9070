"""Validation benchmark: the validator against merely reading the file (issue 15).

The validator runs as file-manager runs it: ``python -m file_manager.vcf.runner`` in a child
process, given the same job on stdin (every §7 rule, the statistics, build detection and the
tabix index, built at the same time in the runner's own child). The limit it is compared to is
reading the file: ``bgzip -dc FILE | wc -l`` (decompressing and splitting lines). Runs alternate
(reading, validating, reading, ...) so both see the same machine; the ratio is taken from the
medians. Wall time is the goal's measure; CPU time (user + system of every process each side
started) is given beside it because it moves far less when other jobs share the CPUs.

    .venv/bin/python bench/validation.py --sizes-gib 0.1 1 --rounds 3

Files are synthetic (``file_manager.testdata``: chr20, hg38, phased, 100 samples by default)
and kept in ``--workdir`` for the next run. ``--python`` runs the runner with another
interpreter (another checkout's ``.venv/bin/python``) to measure its code on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from results import Row, write_rows  # bench/results.py (the scripts run from bench/)

from file_manager.testdata import VcfSpec, write_sized_vcf

ROOT = Path(__file__).resolve().parent.parent
GiB = 1024**3
GOAL_RATIO = 3.0
LIMIT = "bgzip -dc | wc -l"


@dataclass
class Timing:
    wall: float
    cpu: float  # user + system of the processes started (and their children)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str], stdin: bytes | None = None) -> tuple[Timing, bytes]:
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(command, input=stdin, capture_output=True, check=True)
    return Timing(time.perf_counter() - started, children_cpu() - cpu), done.stdout


def read_file(path: Path) -> tuple[Timing, int]:
    """The limit: decompress and count the lines."""
    script = f"set -o pipefail; bgzip -dc {shlex.quote(str(path))} | wc -l"
    timing, out = timed_run(["bash", "-c", script])
    return timing, int(out)


def validate(python: str, path: Path) -> tuple[Timing, dict[str, object]]:
    """The validator's child process with the job file-manager gives it (default limits)."""
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        job = {"path": str(path), "index_path": str(Path(tmp) / "index.tbi"), "limits": {}}
        timing, out = timed_run([python, "-m", "file_manager.vcf.runner"], json.dumps(job).encode())
    return timing, dict(json.loads(out))


def synthetic_vcf(workdir: Path, gib: float, samples: int) -> tuple[Path, int]:
    """A cached synthetic VCF of about ``gib`` GiB and its variant count."""
    path = workdir / f"synthetic_{gib:g}gib_{samples}s.vcf.gz"
    count = path.with_suffix(".variants")
    if not (path.exists() and count.exists()):
        print(f"generating {path} ...", flush=True)
        spec = VcfSpec(samples=samples, build="hg38", chromosome="20", seed=7)
        spec = write_sized_vcf(path, int(gib * GiB), spec)
        count.write_text(str(spec.variants))
    return path, int(count.read_text())


@dataclass
class Result:
    gib: float
    size: int
    variants: int
    samples: int
    reads: list[Timing]
    validations: list[Timing]
    load: tuple[float, float]  # 1-minute load average before and after

    def median(self, timings: list[Timing], what: str) -> float:
        return float(statistics.median(getattr(t, what) for t in timings))

    def ratio(self, what: str) -> float:
        return self.median(self.validations, what) / self.median(self.reads, what)


def measure(python: str, path: Path, variants: int, rounds: int) -> tuple[list[Timing], ...]:
    reads: list[Timing] = []
    validations: list[Timing] = []
    for _ in range(rounds):
        timing, lines = read_file(path)
        reads.append(timing)
        timing, report = validate(python, path)
        validations.append(timing)
        stats = report["statistics"]
        assert isinstance(stats, dict)
        if report["status"] != "valid" or stats["variants"] != variants:
            raise SystemExit(f"unexpected report: {json.dumps(report)[:2000]}")
        if not report["index_built"]:
            raise SystemExit("no tabix index was built")
        print(
            f"  read {reads[-1].wall:.2f}s (cpu {reads[-1].cpu:.2f}s, {lines:,} lines)"
            f"  validate {timing.wall:.2f}s (cpu {timing.cpu:.2f}s)",
            flush=True,
        )
    return reads, validations


def run(args: argparse.Namespace) -> list[Result]:
    results = []
    for gib in args.sizes_gib:
        path, variants = synthetic_vcf(args.workdir, gib, args.samples)
        load_before = os.getloadavg()[0]
        print(f"{gib:g} GiB, {variants:,} variants x {args.samples} samples", flush=True)
        reads, validations = measure(args.python, path, variants, args.rounds)
        results.append(
            Result(
                gib=gib,
                size=path.stat().st_size,
                variants=variants,
                samples=args.samples,
                reads=reads,
                validations=validations,
                load=(load_before, os.getloadavg()[0]),
            )
        )
    return results


def rows(results: list[Result]) -> list[Row]:
    """The ``make bench`` rows: one per size, wall time against the limit."""
    return [
        Row(
            path=f"VCF validation time vs reading the file ({r.gib:g} GiB, "
            f"{r.variants:,} variants x {r.samples} samples)",
            value=round(r.median(r.validations, "wall"), 3),
            unit="s",
            limit=LIMIT,
            limit_value=round(r.median(r.reads, "wall"), 3),
            goal=f"<= {GOAL_RATIO:g}x",
            met=r.ratio("wall") <= GOAL_RATIO,
        )
        for r in results
    ]


def report(results: list[Result], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| file | variants x samples | read (`bgzip -dc \\| wc -l`) wall / CPU "
        "| validation wall / CPU | ratio wall (goal <= 3x) / CPU | load before / after |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.size / GiB:.2f} GiB | {r.variants:,} x {r.samples} "
            f"| {r.median(r.reads, 'wall'):.2f}s / {r.median(r.reads, 'cpu'):.2f}s "
            f"| {r.median(r.validations, 'wall'):.2f}s / {r.median(r.validations, 'cpu'):.2f}s "
            f"| **{r.ratio('wall'):.2f}x** / {r.ratio('cpu'):.2f}x "
            f"| {r.load[0]:.1f} / {r.load[1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes-gib", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--python", default=sys.executable, help="interpreter that runs the runner")
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-upload")
    p.add_argument("--json", type=Path, help="write the make-bench rows here")
    p.add_argument("--quick", action="store_true", help="0.1 GiB, 2 rounds (for make bench)")
    return p


def options(argv: list[str]) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.quick:
        args.sizes_gib, args.rounds = [0.1], 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv if argv is not None else sys.argv[1:])
    results = run(args)
    command = "python bench/validation.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(report(results, command))
    write_rows(args.json, rows(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
