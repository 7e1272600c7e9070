"""Internal endpoints for job-processor (service token, on a user's behalf)."""
