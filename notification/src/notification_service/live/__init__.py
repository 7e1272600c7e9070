"""Live push over WebSocket: tickets, connections, fan-out across replicas."""
