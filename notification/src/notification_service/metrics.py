"""notification's own metrics: built once per app in its registry (``create_service_app(...,
metrics=NotificationMetrics)``), served at /metrics beside the request metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from fedimpute_shared.streams import ConsumerMetrics


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # the event consumer's: notification_events_total, notification_consumer_lag/pending
        self.consumer = ConsumerMetrics(registry, "notification")
        self.deliveries = Counter(
            "notification_deliveries_total",
            "Email and webhook attempts by channel and outcome (sent, retry, failed).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.ws_connections = Gauge(
            "notification_websocket_connections",
            "Open live connections on this replica.",
            registry=registry,
        )
        self.ws_messages = Counter(
            "notification_websocket_messages_total",
            "Live messages queued to connections.",
            registry=registry,
        )
        self.ws_dropped = Counter(
            "notification_websocket_dropped_total",
            "Connections closed because their client did not read its messages.",
            registry=registry,
        )
