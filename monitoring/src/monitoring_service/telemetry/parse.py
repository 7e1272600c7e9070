"""Reading a service's /metrics (Prometheus text) without trusting it, and reducing it to the
few totals the key series are computed from.

The text is parsed with prometheus_client's own parser, after a size check and within a
sample budget: a service answering garbage, or millions of series, costs one bounded read and
is reported as such. What is kept (by sample name, whatever the family's declared type):

- ``http_requests_total{route,status}``: requests and 5xx errors (the probes' own routes
  /health, /ready and /metrics are left out: they would drown the signal);
- ``http_request_duration_seconds_bucket{route,le}``: the latency histogram, all routes summed;
- ``*_consumer_lag``: entries not yet read by the service's consumer group;
- ``*queue*`` gauges (``job_processor_queue_depth``...) and ``outbox_events_pending``: queue depths;
- ``*jobs*_total{outcome|status}``: jobs by outcome (job-processor's throughput).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Garbage", "Totals", "parse_totals"]

QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})
_JOBS = re.compile(r"^[a-z0-9_:]*jobs[a-z0-9_:]*_total$")
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")
_MAX_JOB_OUTCOMES = 20


class Garbage(ValueError):
    """A /metrics body that is not Prometheus text (or is too big to read)."""


@dataclass
class Totals:
    """The cumulative figures of one scrape (counters as read; gauges as they are)."""

    requests: float = 0
    errors: float = 0
    buckets: dict[float, float] = field(default_factory=dict)  # le (seconds) -> cumulative count
    consumer_lag: float | None = None
    queue_depth: float | None = None
    jobs: dict[str, float] = field(default_factory=dict)  # outcome -> cumulative count


def _add(current: float | None, value: float) -> float:
    return value if current is None else current + value


def parse_totals(text: str, max_samples: int) -> Totals:
    """The totals of one /metrics body; :class:`Garbage` when it cannot be read."""
    totals, seen = Totals(), 0
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                seen += 1
                if seen > max_samples:
                    raise Garbage(f"more than {max_samples} samples")
                value = float(sample.value)
                if math.isfinite(value):
                    _keep(totals, sample.name, sample.labels, value)
    except Garbage:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise Garbage(f"not Prometheus text: {type(exc).__name__}") from None
    return totals


def _keep(totals: Totals, name: str, labels: dict[str, str], value: float) -> None:
    if name == "http_requests_total":
        if labels.get("route") not in QUIET_ROUTES:
            totals.requests += value
            if labels.get("status", "").startswith("5"):
                totals.errors += value
    elif name == "http_request_duration_seconds_bucket":
        if labels.get("route") not in QUIET_ROUTES:
            le = float(labels.get("le", "nan"))
            if not math.isnan(le):
                totals.buckets[le] = totals.buckets.get(le, 0) + value
    elif name.endswith("_consumer_lag"):
        totals.consumer_lag = _add(totals.consumer_lag, value)
    elif name == "outbox_events_pending" or ("queue" in name and not name.endswith(_SUFFIXES)):
        totals.queue_depth = _add(totals.queue_depth, value)
    elif _JOBS.match(name):
        outcome = labels.get("outcome") or labels.get("status")
        if outcome and (outcome in totals.jobs or len(totals.jobs) < _MAX_JOB_OUTCOMES):
            totals.jobs[outcome[:40]] = totals.jobs.get(outcome[:40], 0) + value
