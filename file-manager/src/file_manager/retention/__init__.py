"""Retention: expiry warnings, the reaper of expired files and abandoned uploads."""
