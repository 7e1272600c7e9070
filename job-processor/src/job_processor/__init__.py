"""job-processor: imputation jobs from submission to results, across the external services."""
