"""Key series from two consecutive scrapes: rates and latency quantiles over the interval
between them (what Prometheus's ``rate()`` and ``histogram_quantile()`` would give)."""

from __future__ import annotations

import math

from monitoring_service.telemetry.parse import Totals

__all__ = ["QUANTILES", "key_series", "quantile"]

QUANTILES = {"latency_p50_ms": 0.5, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}


def _delta(current: float, previous: float) -> float:
    """A counter's increase; a counter that went down was reset (the service restarted)."""
    return current - previous if current >= previous else current


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram (le -> count), linearly interpolated inside
    its bucket; None without observations. Past the last finite bound: that bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


def key_series(previous: Totals | None, current: Totals, seconds: float) -> dict[str, float]:
    """The series of one scrape: gauges always; rates only with a previous scrape."""
    series: dict[str, float] = {}
    if current.consumer_lag is not None:
        series["consumer_lag"] = current.consumer_lag
    if current.queue_depth is not None:
        series["queue_depth"] = current.queue_depth
    if previous is None or seconds <= 0:
        return series
    requests = _delta(current.requests, previous.requests)
    errors = min(_delta(current.errors, previous.errors), requests)
    series["request_rate"] = round(requests / seconds, 4)
    series["error_rate"] = round(100 * errors / requests, 2) if requests else 0.0
    interval = {
        le: _delta(count, previous.buckets.get(le, 0)) for le, count in current.buckets.items()
    }
    for name, q in QUANTILES.items():
        value = quantile(q, interval)
        if value is not None:
            series[name] = round(value * 1000, 2)
    for outcome, count in current.jobs.items():
        series[f"jobs_{outcome}"] = _delta(count, previous.jobs.get(outcome, 0))
    return series
