"""Test helpers for every service's test suite (pytest).

- :mod:`.infra`: find a real PostgreSQL and Redis (environment, else 127.0.0.1, else embedded)
- :mod:`.database`: a fresh database per test run with the service's real migrations, and
  per-test isolation by truncation
- :mod:`.tokens`: an RSA key pair that mints access and service tokens, served as a real JWKS
  over HTTP (until user-service exists, and for forged-token tests after)
- :mod:`.clock`: :class:`~.clock.ManualClock`, time that passes when a test says so
- :mod:`.client`: ``app_client(app)``, an ``httpx.AsyncClient`` over ASGI with the lifespan run
- :mod:`.pytest_plugin`: the fixtures built on them (``pytest_plugins = [...]``): Postgres,
  Redis, ``token_issuer``, ``engine``/``db``, ``make_app`` (validated settings overrides),
  ``clock``
"""
