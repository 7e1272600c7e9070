"""Templates per event type and channel: defaults shipped here, admins' versions stored."""
