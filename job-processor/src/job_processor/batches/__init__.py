"""Federated batches: one input set sent to several services/panels at once."""
