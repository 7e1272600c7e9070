"""Test helpers for every service's test suite (pytest).

- :mod:`.infra`: find a real PostgreSQL and Redis (environment, else 127.0.0.1, else embedded)
- :mod:`.database`: a fresh database per test run with the service's real migrations, and
  per-test isolation by truncation
- :mod:`.tokens`: an RSA key pair that mints access and service tokens, served as a real JWKS
  over HTTP (until user-service exists, and for forged-token tests after)
- :mod:`.pytest_plugin`: the session fixtures built on them (``pytest_plugins = [...]``)
"""
