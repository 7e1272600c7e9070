"""Roles, their permissions (stored in the database), and grants of roles to users."""
