"""FedImpute notification: events in; in-app, email, WebSocket and webhook deliveries out."""
