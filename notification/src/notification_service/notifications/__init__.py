"""In-app notifications: the list, unread count, read state; internal creation."""
