"""Adapters: one module per remote protocol behind the interface in `base`."""
