"""Fleet health: every service's /health and /ready, polled concurrently; history and uptime."""
