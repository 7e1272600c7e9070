"""The credential vault: encrypted at rest, metadata only to users, decrypted only for
job-processor (audited), key rotation."""

import base64
import os
import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from fedimpute_shared.testing.client import app_client
from user_service.config import Settings
from user_service.models import AuditEvent, ServiceCredential
from user_service.security.vault_cipher import VaultCipher
from user_service.vault.service import reencrypt_all

from .conftest import DELIVERY_PUBLIC, bearer, login, register, service_auth

TOKEN = "mich-TOKEN-0123456789abcdefSECRET"
SERVICE = str(uuid.uuid4())


def _url(service_id=SERVICE):
    return f"/users/me/service-credentials/{service_id}"


async def _put(client, auth, service_id=SERVICE, **overrides):
    body = {"credential_type": "api_token", "token": TOKEN, "label": "Michigan"} | overrides
    return await client.put(_url(service_id), json=body, headers=auth)


async def _reveal(client, user_id, service_id=SERVICE, caller="job-processor"):
    return await client.get(
        f"/internal/users/{user_id}/service-credentials/{service_id}",
        headers=await service_auth(client, caller),
    )


async def test_store_shows_metadata_never_the_secret(client, user_auth, db):
    response = await _put(client, user_auth)
    assert response.status_code == 200
    body = response.json()
    assert body["last_four"] == "CRET"
    assert body["credential_type"] == "api_token"
    assert TOKEN not in response.text
    for url in (_url(), "/users/me/service-credentials"):
        got = await client.get(url, headers=user_auth)
        assert got.status_code == 200
        assert TOKEN not in got.text
    row = await db.scalar(select(ServiceCredential))
    assert TOKEN.encode() not in row.ciphertext
    assert row.key_id == "dev-1"
    assert len(row.nonce) == 12


async def test_client_credentials_and_replacement(client, user_auth, user_tokens):
    await _put(client, user_auth)
    response = await _put(
        client,
        user_auth,
        credential_type="oauth_client_credentials",
        client_id="dnastack-client",
        client_secret="s3cr3t-value-XYZW",
        token=None,
    )
    assert response.status_code == 422  # token is not a field of client credentials
    body = {
        "credential_type": "oauth_client_credentials",
        "client_id": "dnastack-client",
        "client_secret": "s3cr3t-value-XYZW",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    replaced = await client.put(_url(), json=body, headers=user_auth)
    assert replaced.json()["last_four"] == "XYZW"
    revealed = (await _reveal(client, user_tokens["user_id"])).json()
    assert revealed["secret"] == {
        "client_id": "dnastack-client",
        "client_secret": "s3cr3t-value-XYZW",
    }
    assert revealed["expires_at"].startswith("2030-01-01")


async def test_job_processor_reads_the_secret_and_it_is_audited(client, user_auth, user_tokens, db):
    await _put(client, user_auth)
    response = await _reveal(client, user_tokens["user_id"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["secret"] == {"token": TOKEN}
    audit = await db.scalar(select(AuditEvent).where(AuditEvent.action == "credential.read"))
    assert (audit.actor_type, audit.actor_id, audit.outcome) == (
        "service",
        "job-processor",
        "success",
    )
    assert audit.target_id == user_tokens["user_id"]


async def test_other_services_and_users_cannot_read_secrets(client, user_auth, user_tokens):
    await _put(client, user_auth)
    assert (await _reveal(client, user_tokens["user_id"], caller="api-gateway")).status_code == 403
    as_user = await client.get(
        f"/internal/users/{user_tokens['user_id']}/service-credentials/{SERVICE}",
        headers=user_auth,
    )
    assert as_user.status_code == 401


async def test_missing_credential_read_is_404_and_audited(client, user_tokens, db):
    response = await _reveal(client, user_tokens["user_id"])
    assert response.status_code == 404
    audit = await db.scalar(select(AuditEvent).where(AuditEvent.action == "credential.read"))
    assert audit.outcome == "failure"


async def test_another_users_credential_is_404(client, user_auth):
    await _put(client, user_auth)
    await register(client, username="bob", email="bob@example.org")
    bob = bearer((await login(client, "bob"))["access_token"])
    assert (await client.get(_url(), headers=bob)).status_code == 404
    assert (await client.delete(_url(), headers=bob)).status_code == 404
    assert (await client.get(_url(), headers=user_auth)).status_code == 200


async def test_delete_is_audited(client, user_auth, db):
    await _put(client, user_auth)
    assert (await client.delete(_url(), headers=user_auth)).status_code == 204
    assert (await client.get(_url(), headers=user_auth)).status_code == 404
    actions = set((await db.scalars(select(AuditEvent.action))).all())
    assert {"credential.stored", "credential.deleted"} <= actions


@pytest.mark.parametrize(
    "body",
    [
        {"credential_type": "api_token"},
        {"credential_type": "api_token", "token": ""},
        {"credential_type": "password", "token": "x"},
        {"credential_type": "api_token", "token": "nul\x00"},
        {"credential_type": "api_token", "token": "ok-token-1234", "label": "a\nb"},
        {"credential_type": "api_token", "token": "x" * 5000},
    ],
    ids=["no-token", "empty", "unknown-type", "nul", "label-newline", "too-long"],
)
async def test_bad_credentials_are_422(client, user_auth, db, body):
    response = await client.put(_url(), json=body, headers=user_auth)
    assert response.status_code == 422
    assert await db.scalar(select(func.count()).select_from(ServiceCredential)) == 0


async def test_html_label_is_returned_as_data(client, user_auth):
    label = "<img src=x onerror=alert(1)> '; DROP TABLE service_credentials;--"
    stored = await _put(client, user_auth, label=label)
    assert stored.json()["label"] == label


async def test_a_viewer_cannot_use_the_vault(client, admin_auth, user_tokens, db):
    uid = user_tokens["user_id"]
    detail = (await client.get(f"/users/{uid}", headers=admin_auth)).json()
    await client.post(f"/users/{uid}/roles", json={"role": "viewer"}, headers=admin_auth)
    await client.delete(f"/users/{uid}/roles/{detail['grants'][0]['id']}", headers=admin_auth)
    viewer = bearer((await login(client))["access_token"])
    assert (await _put(client, viewer)).status_code == 403


async def test_ciphertext_moved_to_another_user_does_not_decrypt(
    client, user_auth, user_tokens, db
):
    await _put(client, user_auth)
    await register(client, username="bob", email="bob@example.org")
    bob = bearer((await login(client, "bob"))["access_token"])
    await _put(client, bob, token="bobs-own-token-9999")
    alice_row = await db.scalar(
        select(ServiceCredential).where(
            ServiceCredential.user_id == uuid.UUID(user_tokens["user_id"])
        )
    )
    await db.execute(
        update(ServiceCredential)
        .where(ServiceCredential.id != alice_row.id)
        .values(nonce=alice_row.nonce, ciphertext=alice_row.ciphertext)
    )
    await db.commit()
    bob_id = (await client.get("/users/me", headers=bob)).json()["id"]
    assert (await _reveal(client, bob_id)).status_code == 503


async def test_vault_key_rotation(make_app, settings, user_tokens, user_auth, client, engine, db):
    await _put(client, user_auth)
    new_key = base64.b64encode(os.urandom(32)).decode()
    keys = dict(settings.vault_keys) | {"2026-11": SecretStr(new_key)}
    rotated = make_app(vault_keys=keys, vault_active_key_id="2026-11")
    async with app_client(rotated) as c:
        # Old rows still read with the old key; new writes use the new one.
        assert (await _reveal(c, user_tokens["user_id"])).json()["secret"] == {"token": TOKEN}
        other = str(uuid.uuid4())
        await _put(c, user_auth, service_id=other)
    key_ids = sorted((await db.scalars(select(ServiceCredential.key_id))).all())
    assert key_ids == ["2026-11", "dev-1"]
    moved = await reencrypt_all(db, VaultCipher(keys, "2026-11"))
    await db.commit()
    assert moved == 1
    assert set((await db.scalars(select(ServiceCredential.key_id))).all()) == {"2026-11"}
    only_new = make_app(vault_keys={"2026-11": SecretStr(new_key)}, vault_active_key_id="2026-11")
    async with app_client(only_new) as c:
        assert (await _reveal(c, user_tokens["user_id"])).json()["secret"] == {"token": TOKEN}


def test_production_refuses_the_development_vault_key(settings):
    strong = {
        "environment": "production",
        "service_client_secret": "a" * 40,
        "cursor_secret": "b" * 40,
        "service_client_secrets": {"api-gateway": "c" * 40},
        "redis_url": "redis://redis:6379/0",
        "notification_delivery_public_key": DELIVERY_PUBLIC,
    }
    with pytest.raises(ValueError, match="development vault key"):
        Settings(**strong)
    key = base64.b64encode(os.urandom(32)).decode()
    ok = Settings(**strong, vault_keys={"k1": key}, vault_active_key_id="k1")
    assert ok.is_production
