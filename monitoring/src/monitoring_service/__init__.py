"""FedImpute monitoring: fleet and external-service health, metrics, alerts, dashboard, status page."""
