"""Jobs: the state machine, the API and their storage."""
