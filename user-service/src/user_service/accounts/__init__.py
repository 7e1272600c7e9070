"""Accounts: registration, profile, password and email changes, and admin user management."""
