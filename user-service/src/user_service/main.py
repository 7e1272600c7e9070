"""The user-service app: routes, and the keys and password hasher in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, create_service_app
from fedimpute_shared.auth import TokenVerifier
from user_service.accounts.router import admin_router, me_router
from user_service.accounts.router import internal_router as accounts_internal_router
from user_service.audit.router import internal_router as audit_internal_router
from user_service.audit.router import router as audit_router
from user_service.auth.router import router as auth_router
from user_service.bootstrap import bootstrap_admin
from user_service.config import Settings
from user_service.metrics import UserMetrics
from user_service.models import OutboxEvent
from user_service.roles.router import router as roles_router
from user_service.security.keys import Keyring
from user_service.security.passwords import Passwords
from user_service.security.vault_cipher import VaultCipher
from user_service.tokens.router import internal_router as tokens_internal_router
from user_service.tokens.router import router as tokens_router
from user_service.tokens.verification import LocalJWKS
from user_service.vault.router import internal_router as vault_internal_router
from user_service.vault.router import router as vault_router

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
Accounts, roles and permissions, tokens (access and service JWTs, refresh tokens, personal API
tokens) with their public keys (JWKS), the audit log, and the encrypted vault of users'
credentials for external imputation services.
"""

# Order matters: static /users/... paths come before the admin's /users/{user_id} routes.
ROUTERS = [
    auth_router,
    tokens_router,
    me_router,
    audit_router,
    vault_router,
    roles_router,
    admin_router,
    tokens_internal_router,
    accounts_internal_router,
    audit_internal_router,
    vault_internal_router,
]


def passwords_for(settings: Settings) -> Passwords:
    return Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    keyrings: list[Keyring] = []  # loaded at the first start, then kept (RSA parsing is slow)

    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        if not keyrings:
            keyrings.append(
                Keyring.from_files(
                    settings.jwt_signing_key_file,
                    settings.jwt_verification_key_files,
                    create_missing=not settings.is_production,
                )
            )
        keyring = keyrings[0]
        passwords = passwords_for(settings)
        await bootstrap_admin(core.sessionmaker, passwords, settings)
        verifier = TokenVerifier(
            LocalJWKS(keyring, core.http),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            service_name=settings.service_name,
        )
        yield {
            "keyring": keyring,
            "passwords": passwords,
            "vault": VaultCipher(settings.vault_keys, settings.vault_active_key_id),
            "token_verifier": verifier,
        }

    return create_service_app(
        settings,
        title="FedImpute user-service",
        description=DESCRIPTION,
        routers=ROUTERS,
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=lifespan,
        uses_redis=True,
        metrics=UserMetrics,
        outbox=OutboxEvent,
    )
