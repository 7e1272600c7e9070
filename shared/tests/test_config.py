"""The production guard against development secrets."""

import pytest
from pydantic import SecretStr, ValidationError

from fedimpute_shared.config import ServiceSettings

STRONG = "Zq8v2LmX0pRt7YwNc4KfHj6SdGa1BeUo"


def test_development_accepts_defaults():
    assert ServiceSettings(environment="development").cursor_secret.get_secret_value()


def test_production_refuses_default_secrets_naming_them():
    with pytest.raises(ValidationError) as info:
        ServiceSettings(environment="production")
    message = str(info.value)
    assert "cursor_secret" in message
    assert "service_client_secret" in message


def test_production_refuses_short_secret():
    with pytest.raises(ValidationError, match="cursor_secret"):
        ServiceSettings(
            environment="production",
            cursor_secret=SecretStr("short"),
            service_client_secret=SecretStr(STRONG),
        )


def test_production_accepts_strong_secrets():
    settings = ServiceSettings(
        environment="production",
        cursor_secret=SecretStr(STRONG),
        service_client_secret=SecretStr(STRONG[::-1]),
        redis_url="redis://redis:6379/0",
    )
    assert settings.is_production


@pytest.mark.parametrize("environment", [None, "production", "test"])
def test_only_an_explicit_development_is_relaxed(monkeypatch, environment):
    """Issue 10 item 15: the guard ran only for ENVIRONMENT=production, and without REDIS_URL
    the rate limiter was silently off. Unset, test or production: the production rules."""
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    strong = {"cursor_secret": STRONG, "service_client_secret": STRONG[::-1]}
    given = {} if environment is None else {"environment": environment}
    with pytest.raises(ValidationError, match="cursor_secret"):
        ServiceSettings(**given, redis_url="redis://redis:6379/0")
    with pytest.raises(ValidationError, match="REDIS_URL is not set"):
        ServiceSettings(**given, **strong)
    assert ServiceSettings(**given, **strong, redis_url="redis://redis:6379/0").is_production
    relaxed = ServiceSettings(environment="development")
    assert not relaxed.is_production
    assert relaxed.redis_url is None


def test_settings_read_from_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "from-env")
    monkeypatch.setenv("CURSOR_SECRET", STRONG)
    settings = ServiceSettings()
    assert settings.service_name == "from-env"
    assert STRONG not in str(settings.public_dict())
