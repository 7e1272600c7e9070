"""Issue 10 item 7: no start log of any service holds its database password (or any URL's).

Each installed service of the fleet is built by its own ``create_app`` from the environment a
deployment gives it (a ``DATABASE_URL`` with a password; Postgres here trusts local clients, so
the password is accepted and ignored), started and stopped, with JSON and with plain logs;
everything it wrote to stderr is searched for the password."""

from __future__ import annotations

import importlib
import secrets
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from fedimpute_shared.fleet import FLEET
from fedimpute_shared.testing.client import app_client

PASSWORD = "Db-pa55word-" + secrets.token_hex(8)
INSTALLED = [s for s in FLEET if s.installed]


def _database_url(postgres_admin_url: str) -> str:
    url = make_url(postgres_admin_url).set(
        drivername="postgresql+asyncpg", password=PASSWORD, database="postgres"
    )
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("log_json", ["true", "false"])
@pytest.mark.parametrize("service", INSTALLED, ids=[s.name for s in INSTALLED])
async def test_no_start_log_holds_the_database_password(
    service: Any, log_json: str, postgres_admin_url, redis_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # files a service creates at start (keys, storage) go here
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("DATABASE_URL", _database_url(postgres_admin_url))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("LOG_JSON", log_json)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OUTBOX_RELAY_ENABLED", "false")
    main = importlib.import_module(f"{service.package}.main")
    app = main.create_app()
    async with app_client(app):
        pass
    logged = capsys.readouterr().err
    assert f"{service.name} started" in logged
    assert PASSWORD not in logged
    if log_json == "true":  # the settings are logged (an extra field), the URL without password
        assert "[REDACTED]@" in logged
