"""`make bench`'s summary (bench/run_all.py): rows land in docs/benchmarks.md between markers,
the hand-written sections stay, and a failed benchmark never passes off old figures as new."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import run_all
from results import Row

DOC = "# Benchmarks\n\nIntroduction.\n\n## Health sweep\n\nHand-written.\n"


def outcome(name: str, rows: list[dict[str, object]], error: str | None = None) -> run_all.Outcome:
    bench = next(b for b in run_all.BENCHES if b.name == name)
    return run_all.Outcome(bench, f"cmd {name}", 12.0, error, rows, "2026-11-30 06:00 UTC")


def test_a_row_carries_its_ratio_to_the_limit() -> None:
    row = Row("p", 0.42, "ms", limit="bare hop", limit_value=0.1, goal="<= 0.5 ms", met=True)
    assert row.as_dict()["ratio"] == pytest.approx(4.2)
    assert Row("q", 3.0, "s").as_dict()["ratio"] is None


def test_the_summary_goes_after_the_introduction_and_replaces_itself() -> None:
    state: dict[str, object] = {}
    rows = [Row("sweep", 2.8, "s", "ideal", 2.5, "<= 1.2x ideal", True).as_dict()]
    run_all.record(state, outcome("health-sweep", rows), "0.3 → 0.5")
    first = run_all.rewrite_doc(DOC, run_all.summary(state))
    assert first.index("Introduction.") < first.index(run_all.BEGIN) < first.index("## Health")
    assert "| sweep | 2.80 s | ideal (2.50 s) | 1.12x | <= 1.2x ideal | **met** |" in first
    assert "Goals met: **1 of 1**" in first

    rows = [Row("sweep", 3.5, "s", "ideal", 2.5, "<= 1.2x ideal", False).as_dict()]
    run_all.record(state, outcome("health-sweep", rows), "0.3 → 0.5")
    second = run_all.rewrite_doc(first, run_all.summary(state))
    assert second.count(run_all.BEGIN) == 1
    assert second.count("Hand-written.") == 1
    assert "1.40x" in second
    assert "1.12x" not in second
    assert "Goals met: **0 of 1**" in second


def test_a_failed_run_keeps_the_earlier_rows_and_says_so() -> None:
    state: dict[str, object] = {}
    rows = [Row("cycle", 4.2, "s", "ideal", 0.65).as_dict()]
    run_all.record(state, outcome("polling", rows), "1 → 1")
    run_all.record(state, outcome("polling", [], error="exit 1"), "1 → 1")
    text = run_all.summary(state)
    assert "| cycle | 4.20 s |" in text
    assert "**failed: exit 1** (rows from an earlier run)" in text


def test_a_pipe_in_a_path_does_not_break_the_table() -> None:
    state: dict[str, object] = {}
    rows = [Row("validation vs bgzip -dc | wc -l", 3.0, "s", "bgzip -dc | wc -l", 1.0).as_dict()]
    run_all.record(state, outcome("upload", rows), "1 → 1")
    line = next(x for x in run_all.summary(state).splitlines() if "validation vs" in x)
    assert line.count(" | ") == 6  # seven cells, the pipes inside them escaped
    assert "bgzip -dc \\| wc -l" in line
