"""The public status page (no login)."""
