"""The event stream consumer's processing of the events monitoring cares about."""
