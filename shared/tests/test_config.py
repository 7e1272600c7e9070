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
    )
    assert settings.is_production


def test_settings_read_from_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "from-env")
    monkeypatch.setenv("CURSOR_SECRET", STRONG)
    settings = ServiceSettings()
    assert settings.service_name == "from-env"
    assert STRONG not in str(settings.public_dict())
