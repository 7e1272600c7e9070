"""The figures a benchmark hands to `make bench` (bench/run_all.py).

Every benchmark script takes ``--json PATH`` and writes there a JSON list of rows, one per figure
it reports against a limit or a goal. ``run_all.py`` gathers them into the summary table at the
top of docs/benchmarks.md, so a reader sees at a glance which path is where.

A row (``Row`` below, or the same keys as a plain dict)::

    {"path": "gateway CPU per proxied request", "value": 0.42, "unit": "ms",
     "limit": "bare proxy hop", "limit_value": 0.1, "ratio": 4.2,
     "goal": "<= 0.5 ms", "met": true}

``ratio`` is the figure as a multiple of its limit (``value / limit_value``; None when the path
has no natural limit); ``met`` is the verdict on the goal (None when the row has no goal).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    path: str
    value: float
    unit: str
    limit: str | None = None
    limit_value: float | None = None
    goal: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if not self.limit_value:
            return None
        return self.value / self.limit_value

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"ratio": self.ratio}


def write_rows(path: Path | None, rows: list[Row]) -> None:
    """Write ``rows`` for `make bench` when the script was given ``--json PATH``."""
    if path is not None:
        path.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
