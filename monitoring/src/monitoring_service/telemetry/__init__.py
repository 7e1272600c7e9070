"""Metrics: each service's /metrics scraped and reduced to key series; the host's resources."""
