"""What WES nodes can run (capabilities from service-info) and how jobs run there (profiles)."""
