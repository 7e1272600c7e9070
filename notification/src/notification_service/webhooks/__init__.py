"""Webhooks: per-user endpoints, signed deliveries with retries, the delivery log."""
