"""Scheduled jobs: a template run once at a given time or on a cron expression."""
