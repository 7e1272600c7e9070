"""Session fixtures every service's tests build on. Enable with
``pytest_plugins = ["fedimpute_shared.testing.pytest_plugin"]`` in the root ``conftest.py``.

- ``postgres_admin_url``: a real PostgreSQL server to create test databases on
- ``redis_url``: a real Redis (tests use their own database number and flush it)
- ``token_issuer``: a :class:`~fedimpute_shared.testing.tokens.TokenIssuer` with a live JWKS
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedimpute_shared.testing.infra import postgres_admin_url as _postgres_admin_url
from fedimpute_shared.testing.infra import redis_url as _redis_url
from fedimpute_shared.testing.tokens import TokenIssuer


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
