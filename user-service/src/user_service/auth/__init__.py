"""Signing in and out: login with lockout, refresh, logout, password reset, email checks."""
