"""Reference panels offered by each imputation service."""
