"""Platform events in: the stream consumer, what each event produces, dead letters."""
