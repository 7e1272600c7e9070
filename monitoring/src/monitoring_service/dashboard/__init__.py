"""The dashboard: jobs (from job-processor), external services, recent jobs."""
