"""Session fixtures every service's tests build on. Enable with
``pytest_plugins = ["fedimpute_shared.testing.pytest_plugin"]`` in the root ``conftest.py``.

- ``postgres_admin_url``: a real PostgreSQL server to create test databases on
- ``redis_url``: a real Redis (tests use their own database number and flush it)
- ``token_issuer``: a :class:`~fedimpute_shared.testing.tokens.TokenIssuer` with a live JWKS
- ``engine`` and ``db``: an engine on the service's test database and a session for arranging
  and checking data directly; every table is emptied after each test that uses ``db``. They
  need a ``database_url`` fixture, which each service's ``conftest.py`` defines with
  ``migrated_database(postgres_admin_url, "<service>", MIGRATIONS_DIR)``.
- ``make_app``: ``make_app(**overrides)`` builds the service's app with its ``settings``
  fixture changed by ``overrides`` *and validated* (a value below its declared minimum fails
  the test, as it would fail the service); it needs an ``app_factory`` fixture (the service's
  ``create_app``).
- ``clock``: a :class:`~fedimpute_shared.testing.clock.ManualClock` installed as the clock for
  the test: ``await clock.advance(seconds)`` instead of sleeping.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from fedimpute_shared.clock import use_clock
from fedimpute_shared.config import ServiceSettings, validated_copy
from fedimpute_shared.testing.clock import ManualClock
from fedimpute_shared.testing.database import truncate_all
from fedimpute_shared.testing.infra import postgres_admin_url as _postgres_admin_url
from fedimpute_shared.testing.infra import redis_url as _redis_url
from fedimpute_shared.testing.tokens import TokenIssuer


def pytest_configure(config: pytest.Config) -> None:
    """Tests run as a development machine (relaxed secrets) unless a test says otherwise: the
    settings' default is production (issue 10, item 15)."""
    os.environ.setdefault("ENVIRONMENT", "development")


def _var_dir(config: pytest.Config) -> Path:
    return Path(str(config.rootpath)) / "var" / "test"


@pytest.fixture(scope="session")
def postgres_admin_url(pytestconfig: pytest.Config) -> str:
    return _postgres_admin_url(_var_dir(pytestconfig))


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> str:
    return _redis_url(_var_dir(pytestconfig))


@pytest.fixture(scope="session")
def token_issuer() -> Iterator[TokenIssuer]:
    issuer = TokenIssuer()
    yield issuer
    issuer.close()


# Module scope, not session: ``database_url`` differs per service directory, and a session-scoped
# fixture defined here would be computed once for the first service and reused for the others.
@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session for arranging and checking data directly; tables are emptied afterwards."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker() as session:
        yield session
    await truncate_all(engine)


@pytest.fixture
def make_app(settings: ServiceSettings, app_factory: Callable[[Any], Any]) -> Callable[..., Any]:
    """``make_app(**overrides)``: the app with validated settings overrides."""

    def build(**overrides: Any) -> Any:
        return app_factory(validated_copy(settings, **overrides))

    return build


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    manual = ManualClock()
    with use_clock(manual):
        yield manual
