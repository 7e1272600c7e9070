"""Registering, listing, changing and removing external imputation services."""
