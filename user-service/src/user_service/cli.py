"""Commands beside serve/migrate: ``create-admin``, ``generate-signing-key``, ``reencrypt-vault``.

``python -m user_service create-admin --username NAME --email ADDRESS`` reads the password from
the terminal (twice), or from standard input with ``--password-stdin``; there is no default.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.db import create_engine, create_sessionmaker, session_scope
from user_service.bootstrap import AdminCreationError, create_admin
from user_service.config import Settings
from user_service.main import passwords_for
from user_service.security.keys import KeyConfigurationError, generate_key_file
from user_service.security.vault_cipher import VaultCipher, VaultDecryptError
from user_service.vault.service import reencrypt_all


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the administrator: ")
    if getpass.getpass("Same password again: ") != first:
        raise AdminCreationError("the two passwords differ")
    return first


def create_admin_command(base: ServiceSettings, args: list[str]) -> int:
    settings = cast(Settings, base)
    parser = argparse.ArgumentParser(prog="python -m user_service create-admin")
    parser.add_argument("--username", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    options = parser.parse_args(args)
    try:
        password = _read_password(options.password_stdin)
        user_id = asyncio.run(_create_admin(settings, options.username, options.email, password))
    except AdminCreationError as exc:
        print(f"cannot create the administrator: {exc}", file=sys.stderr)
        return 1
    print(f"created administrator {options.username} ({user_id})")
    return 0


async def _create_admin(settings: Settings, username: str, email: str, password: str) -> str:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            user = await create_admin(
                session,
                passwords_for(settings),
                settings,
                username=username,
                email=email,
                password=password,
            )
            return str(user.id)
    finally:
        await engine.dispose()


def generate_signing_key_command(base: ServiceSettings, args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m user_service generate-signing-key")
    parser.add_argument("path", type=Path, help="where to write the PEM private key (0600)")
    parser.add_argument("--alg", choices=["RS256", "ES256"], default="RS256")
    options = parser.parse_args(args)
    try:
        key = generate_key_file(options.path, options.alg)
    except FileExistsError:
        print(f"{options.path} exists; refusing to overwrite a signing key", file=sys.stderr)
        return 1
    except (OSError, KeyConfigurationError) as exc:
        print(f"cannot write {options.path}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {key.algorithm} key {key.kid} to {options.path}")
    return 0


def reencrypt_vault_command(base: ServiceSettings, args: list[str]) -> int:
    settings = cast(Settings, base)
    try:
        moved = asyncio.run(_reencrypt(settings))
    except VaultDecryptError as exc:
        print(f"cannot re-encrypt: {exc}", file=sys.stderr)
        return 1
    print(f"re-encrypted {moved} credential(s) with key {settings.vault_active_key_id}")
    return 0


async def _reencrypt(settings: Settings) -> int:
    cipher = VaultCipher(settings.vault_keys, settings.vault_active_key_id)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            return await reencrypt_all(session, cipher)
    finally:
        await engine.dispose()


COMMANDS: dict[str, Callable[[Settings, list[str]], int]] = {
    "create-admin": create_admin_command,
    "generate-signing-key": generate_signing_key_command,
    "reencrypt-vault": reencrypt_vault_command,
}
