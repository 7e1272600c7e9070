"""Ranking services for a request, with the reasons shown."""
