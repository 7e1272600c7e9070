"""service-registry's own metrics: built once per app in its registry (``create_service_app(...,
metrics=RegistryMetrics)``), served at /metrics beside the request metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "registry_health_checks_total",
            "Health probes by resulting status.",
            ["status"],
            registry=registry,
        )
        self.sweeps = Histogram(
            "registry_health_sweep_seconds",
            "Duration of a full health sweep.",
            buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
            registry=registry,
        )
        self.skipped = Counter(
            "registry_health_sweeps_skipped_total",
            "Sweeps skipped because another replica held the lock.",
            registry=registry,
        )
