"""Configuration, keys, the client address rule, the first administrator and the CLI."""

import asyncio
import base64
import io
import os
import sys

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from fedimpute_shared.app import service_cli
from fedimpute_shared.testing.client import app_client
from user_service.bootstrap import AdminCreationError
from user_service.cli import COMMANDS
from user_service.config import Settings
from user_service.main import MIGRATIONS_DIR, create_app
from user_service.models import RoleGrant, User
from user_service.request_meta import client_ip
from user_service.security.keys import (
    KeyConfigurationError,
    Keyring,
    generate_key_file,
    load_key,
)

from .conftest import ADMIN_PASSWORD, DELIVERY_PUBLIC, login, register

PROD = {
    "environment": "production",
    "service_client_secret": "a" * 40,
    "cursor_secret": "b" * 40,
}


def test_production_refuses_development_client_secrets():
    with pytest.raises(ValueError, match=r"service_client_secrets\[api-gateway\]"):
        Settings(**PROD)


def test_settings_parse_lists_and_json_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    monkeypatch.setenv("JWT_VERIFICATION_KEY_FILES", f"{tmp_path}/a.pem,{tmp_path}/b.pem")
    monkeypatch.setenv("SERVICE_CLIENT_SECRETS", '{"api-gateway": "s1"}')
    settings = Settings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]
    assert [p.name for p in settings.jwt_verification_key_files] == ["a.pem", "b.pem"]
    assert settings.service_client_secrets["api-gateway"].get_secret_value() == "s1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"trusted_proxies": ["not-an-ip"]},
        {"vault_keys": {"k": "c2hvcnQ="}},
        {"vault_active_key_id": "missing"},
    ],
)
def test_invalid_settings_are_refused(overrides):
    with pytest.raises(ValueError):  # noqa: PT011 (pydantic's ValidationError, several causes)
        Settings(**overrides)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "203.0.113.9, 127.0.0.1", "203.0.113.9"),  # skip trusted hops
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("192.0.2.7", "203.0.113.9", "192.0.2.7"),  # untrusted peer: header ignored
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address_rule(peer, forwarded, expected):
    assert client_ip(peer, forwarded, ("127.0.0.1/32", "::1/128")) == expected


def test_generated_keys_load_and_are_never_overwritten(tmp_path):
    path = tmp_path / "k" / "signing.pem"
    key = generate_key_file(path, "ES256")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_key(path, need_private=True).kid == key.kid
    with pytest.raises(FileExistsError):
        generate_key_file(path)


def test_unsupported_keys_are_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    other_curve = ec.generate_private_key(ec.SECP384R1())
    for name, key in (("weak.pem", weak), ("p384.pem", other_curve)):
        path = tmp_path / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        with pytest.raises(KeyConfigurationError):
            load_key(path, need_private=True)
    with pytest.raises(KeyConfigurationError, match="does not exist"):
        Keyring.from_files(tmp_path / "absent.pem", [], create_missing=False)


async def test_missing_key_is_generated_outside_production(make_app, tmp_path, db):
    path = tmp_path / "var" / "jwt.pem"
    async with app_client(make_app(jwt_signing_key_file=path)) as c:
        assert (await c.get("/.well-known/jwks.json")).status_code == 200
    assert path.exists()


async def test_first_admin_from_environment_at_start(make_app, db):
    env = {
        "bootstrap_admin_username": "boss",
        "bootstrap_admin_email": "boss@example.org",
        "bootstrap_admin_password": SecretStr(ADMIN_PASSWORD),
    }
    for _ in range(2):  # a restart does not create a second one
        async with app_client(make_app(**env)) as c:
            pass
    admins = (await db.scalars(select(RoleGrant).where(RoleGrant.role_name == "admin"))).all()
    assert len(admins) == 1
    async with app_client(make_app()) as c:
        tokens = await login(c, "boss", ADMIN_PASSWORD)
    assert tokens["access_token"]


async def test_bootstrap_never_promotes_an_existing_account(make_app, client, db):
    await register(client, username="boss", email="boss@example.org")
    app = make_app(
        bootstrap_admin_username="boss",
        bootstrap_admin_email="boss2@example.org",
        bootstrap_admin_password=SecretStr(ADMIN_PASSWORD),
    )
    with pytest.raises(AdminCreationError, match="username is taken"):
        async with app_client(app):
            pass
    assert await db.scalar(select(RoleGrant).where(RoleGrant.role_name == "admin")) is None


async def test_bootstrap_refuses_a_weak_password(make_app, db):
    app = make_app(
        bootstrap_admin_username="boss",
        bootstrap_admin_email="boss@example.org",
        bootstrap_admin_password=SecretStr("admin"),
    )
    with pytest.raises(AdminCreationError, match="at least 12"):
        async with app_client(app):
            pass


def _cli(settings, argv, stdin=""):
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return service_cli(lambda: settings, create_app, MIGRATIONS_DIR, COMMANDS, argv)
    finally:
        sys.stdin = old


async def test_create_admin_command(settings, db, capsys):
    args = ["create-admin", "--username", "chief", "--email", "chief@example.org"]
    code = await asyncio.to_thread(
        _cli, settings, [*args, "--password-stdin"], ADMIN_PASSWORD + "\n"
    )
    assert code == 0
    assert "created administrator chief" in capsys.readouterr().out
    user = await db.scalar(select(User).where(User.username == "chief"))
    assert user.email_verified
    weak = await asyncio.to_thread(
        _cli,
        settings,
        ["create-admin", "--username", "chief2", "--email", "c2@example.org", "--password-stdin"],
        "chief\n",
    )
    assert weak == 1
    assert "at least 12 characters" in capsys.readouterr().err


def test_generate_signing_key_command(settings, tmp_path, capsys):
    path = tmp_path / "dev.pem"
    assert _cli(settings, ["generate-signing-key", str(path)]) == 0
    assert "RS256" in capsys.readouterr().out
    assert _cli(settings, ["generate-signing-key", str(path)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_production_needs_the_notification_delivery_key():
    """Issue 10 item 5: without it, account emails could not be sealed."""
    strong = {
        "environment": "production",
        "service_client_secret": "a" * 40,
        "cursor_secret": "b" * 40,
        "service_client_secrets": {"api-gateway": "c" * 40},
        "redis_url": "redis://redis:6379/0",
        "vault_keys": {"k1": base64.b64encode(os.urandom(32)).decode()},
        "vault_active_key_id": "k1",
    }
    with pytest.raises(ValueError, match="NOTIFICATION_DELIVERY_PUBLIC_KEY"):
        Settings(**strong)
    with pytest.raises(ValueError, match="NOTIFICATION_DELIVERY_PUBLIC_KEY"):
        Settings(**strong, notification_delivery_public_key="not-a-key")
    assert Settings(**strong, notification_delivery_public_key=DELIVERY_PUBLIC).is_production
