"""External imputation services: status from the registry's events and API; incidents."""
