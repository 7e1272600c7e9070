"""notification's own metrics: built once per app in its registry (``create_service_app(...,
metrics=NotificationMetrics)``), served at /metrics beside the request metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "notification_events_total",
            "Stream entries by outcome (processed, duplicate, ignored, dead_lettered, retried).",
            ["outcome"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "notification_consumer_lag",
            "Stream entries not yet delivered to the notification consumer group.",
            registry=registry,
        )
        self.consumer_pending = Gauge(
            "notification_consumer_pending",
            "Entries delivered to the group but not yet acknowledged.",
            registry=registry,
        )
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
