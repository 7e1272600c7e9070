"""Per-user preferences: channels per category, digest, quiet hours."""
