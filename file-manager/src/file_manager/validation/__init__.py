"""Background validation of uploaded VCFs (a queue in each replica, leases in Postgres)."""
