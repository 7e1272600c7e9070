"""Checking a user's stored credentials against the service itself."""
