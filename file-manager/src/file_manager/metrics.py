"""file-manager's domain counters, registered in the app's own Prometheus registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass
class FileMetrics:
    uploads: Counter
    upload_bytes: Counter
    validations: Counter
    downloads: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> FileMetrics:
        return cls(
            uploads=Counter(
                "file_uploads_total", "Completed uploads by method.", ["method"], registry=registry
            ),
            upload_bytes=Counter(
                "file_upload_bytes_total", "Bytes of completed uploads.", registry=registry
            ),
            validations=Counter(
                "file_validations_total",
                "Finished validations by outcome.",
                ["status"],
                registry=registry,
            ),
            downloads=Counter(
                "file_downloads_total", "Downloads by route.", ["via"], registry=registry
            ),
        )
