"""Health of the external services: probes per protocol, the status rules, the sweep worker,
history and uptime."""
