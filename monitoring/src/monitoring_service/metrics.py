"""monitoring's own metrics: built once per app in its registry (``create_service_app(...,
metrics=MonitoringMetrics)``), served at /metrics beside the request metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from fedimpute_shared.streams import ConsumerMetrics


class MonitoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.fleet_up = Gauge(
            "monitoring_fleet_service_up",
            "1 when the fleet service's last probe found it up, else 0.",
            ["service"],
            registry=registry,
        )
        self.scrapes = Counter(
            "monitoring_scrapes_total",
            "Scrapes of the fleet's /metrics by outcome (ok, unreachable, refused, garbage).",
            ["outcome"],
            registry=registry,
        )
        self.alerts_open = Gauge(
            "monitoring_alerts_open",
            "Unresolved alerts (open or acknowledged) by severity.",
            ["severity"],
            registry=registry,
        )
        # the event consumer's: monitoring_events_total, monitoring_consumer_lag/pending
        self.consumer = ConsumerMetrics(registry, "monitoring")
