"""Admin API: users, roles (from the database), scoped and expiring grants, deactivation."""

import uuid
from datetime import timedelta

import pytest
from jose import jwt
from sqlalchemy import select, update

from fedimpute_shared.db import utcnow
from fedimpute_shared.permissions import DEFAULT_ROLE_PERMISSIONS, Role
from user_service.models import AuditEvent, RoleGrant

from .conftest import bearer, login, register


async def test_roles_in_the_database_match_the_shared_defaults(client, admin_auth):
    roles = (await client.get("/users/roles", headers=admin_auth)).json()
    assert {r["name"]: set(r["permissions"]) for r in roles} == {
        str(role): {str(s) for s in scopes} for role, scopes in DEFAULT_ROLE_PERMISSIONS.items()
    }


async def test_admin_lists_and_filters_users(client, admin_auth, user_tokens):
    await register(client, username="bob", email="bob@example.org")
    page = (await client.get("/users?limit=2", headers=admin_auth)).json()
    assert [u["username"] for u in page["items"]] == ["root", "ada"]
    rest = await client.get(f"/users?limit=2&cursor={page['next_cursor']}", headers=admin_auth)
    assert [u["username"] for u in rest.json()["items"]] == ["bob"]
    by_q = (await client.get("/users?q=BO", headers=admin_auth)).json()["items"]
    assert [u["username"] for u in by_q] == ["bob"]
    admins = (await client.get("/users?role=admin", headers=admin_auth)).json()["items"]
    assert [u["username"] for u in admins] == ["root"]
    assert admins[0]["grants"][0]["role"] == "admin"


async def test_non_admins_are_forbidden(client, user_auth, user_tokens):
    assert (await client.get("/users", headers=user_auth)).status_code == 403
    uid = user_tokens["user_id"]
    response = await client.post(f"/users/{uid}/roles", json={"role": "admin"}, headers=user_auth)
    assert response.status_code == 403
    assert (await client.get("/users/audit-log", headers=user_auth)).status_code == 403


async def test_unknown_user_is_404(client, admin_auth):
    assert (await client.get(f"/users/{uuid.uuid4()}", headers=admin_auth)).status_code == 404


async def test_granted_roles_reach_the_next_token(client, admin_auth, user_tokens):
    uid = user_tokens["user_id"]
    service_id = str(uuid.uuid4())
    platform = await client.post(
        f"/users/{uid}/roles", json={"role": "service_admin"}, headers=admin_auth
    )
    scoped = await client.post(
        f"/users/{uid}/roles",
        json={"role": "admin", "service_id": service_id},
        headers=admin_auth,
    )
    assert (platform.status_code, scoped.status_code) == (201, 201)
    assert scoped.json()["service_id"] == service_id
    claims = jwt.get_unverified_claims((await login(client))["access_token"])
    assert claims["roles"] == ["researcher", "service_admin"]
    assert "services:write" in claims["scopes"]
    assert "users:admin" not in claims["scopes"]  # the admin grant holds for one service only
    assert claims["service_roles"] == {service_id: ["admin"]}
    # GET /users/me reads the same access (one query joining grants and permissions)
    me = await client.get("/users/me", headers=bearer((await login(client))["access_token"]))
    assert me.json()["roles"] == claims["roles"]
    assert me.json()["scopes"] == sorted(claims["scopes"])
    assert me.json()["service_roles"] == claims["service_roles"]
    expected = (
        DEFAULT_ROLE_PERMISSIONS[Role.RESEARCHER] | DEFAULT_ROLE_PERMISSIONS[Role.SERVICE_ADMIN]
    )
    assert set(me.json()["scopes"]) == {str(s) for s in expected}


async def test_a_deactivated_account_reads_nothing_with_a_token_still_signed(
    client, admin_auth, user_tokens
):
    """The reads on a read-only session (``ReadAccount``) load the account fresh as well."""
    mine = bearer(user_tokens["access_token"])
    assert (await client.get("/users/me", headers=mine)).status_code == 200
    assert (await client.get("/users/me/api-tokens", headers=mine)).status_code == 200
    uid = user_tokens["user_id"]
    assert (await client.post(f"/users/{uid}/deactivate", headers=admin_auth)).status_code == 200
    assert (await client.get("/users/me", headers=mine)).status_code == 401
    assert (await client.get("/users/me/api-tokens", headers=mine)).status_code == 401


async def test_expired_grants_give_nothing(client, admin_auth, user_tokens, db):
    uid = user_tokens["user_id"]
    expires = (utcnow() + timedelta(hours=1)).isoformat()
    response = await client.post(
        f"/users/{uid}/roles",
        json={"role": "service_admin", "expires_at": expires},
        headers=admin_auth,
    )
    assert response.status_code == 201
    await db.execute(
        update(RoleGrant)
        .where(RoleGrant.role_name == "service_admin")
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await db.commit()
    me = await client.get("/users/me", headers=bearer((await login(client))["access_token"]))
    assert me.json()["roles"] == ["researcher"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"role": "emperor"}, 422),
        ({"role": "researcher"}, 409),  # already held
        ({"role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, 422),
        ({"role": "viewer", "expires_at": "2999-01-01T00:00:00"}, 422),  # no timezone
    ],
    ids=["unknown-role", "duplicate", "past-expiry", "naive-expiry"],
)
async def test_bad_grants_are_refused(client, admin_auth, user_tokens, db, body, status):
    response = await client.post(
        f"/users/{user_tokens['user_id']}/roles", json=body, headers=admin_auth
    )
    assert response.status_code == status
    assert await db.scalar(select(RoleGrant).where(RoleGrant.role_name == "viewer")) is None


async def test_revoking_a_role_is_audited(client, admin_auth, user_tokens, db):
    uid = user_tokens["user_id"]
    grant = (
        await client.post(f"/users/{uid}/roles", json={"role": "viewer"}, headers=admin_auth)
    ).json()
    response = await client.delete(f"/users/{uid}/roles/{grant['id']}", headers=admin_auth)
    assert response.status_code == 204
    assert (
        await client.delete(f"/users/{uid}/roles/{grant['id']}", headers=admin_auth)
    ).status_code == 404
    actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.target_id == uid))).all()
    assert {"role.granted", "role.revoked"} <= set(actions)


async def test_the_last_admin_cannot_be_removed(client, admin_auth):
    me = (await client.get("/users/me", headers=admin_auth)).json()
    detail = (await client.get(f"/users/{me['id']}", headers=admin_auth)).json()
    (grant,) = detail["grants"]
    response = await client.delete(f"/users/{me['id']}/roles/{grant['id']}", headers=admin_auth)
    assert response.status_code == 409
    assert (
        await client.post(f"/users/{me['id']}/deactivate", headers=admin_auth)
    ).status_code == 409


async def test_deactivate_and_reactivate(client, admin_auth, user_tokens, db):
    uid = user_tokens["user_id"]
    response = await client.post(f"/users/{uid}/deactivate", headers=admin_auth)
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["deactivated_at"] is not None
    inactive = (await client.get("/users?is_active=false", headers=admin_auth)).json()["items"]
    assert [u["id"] for u in inactive] == [uid]
    back = await client.post(f"/users/{uid}/activate", headers=admin_auth)
    assert back.json()["is_active"] is True
    await login(client)
    actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.target_id == uid))).all()
    assert {"account.deactivated", "account.activated"} <= set(actions)


async def test_admin_needs_the_users_admin_scope_in_the_token(client, admin_auth, db):
    """An admin's API token without users:admin cannot use the admin API."""
    created = await client.post(
        "/users/me/api-tokens", json={"name": "ro", "scopes": ["jobs:read"]}, headers=admin_auth
    )
    from .conftest import service_auth

    exchanged = await client.post(
        "/internal/api-tokens/exchange",
        json={"token": created.json()["token"]},
        headers=await service_auth(client, "api-gateway"),
    )
    narrow = bearer(exchanged.json()["access_token"])
    response = await client.get("/users", headers=narrow)
    assert response.status_code == 403
    assert "users:admin" in response.json()["detail"]


async def test_notification_reads_contact_details(client, user_tokens):
    from .conftest import service_auth

    uid = user_tokens["user_id"]
    ok = await client.get(
        f"/internal/users/{uid}", headers=await service_auth(client, "notification")
    )
    assert ok.status_code == 200
    assert (ok.json()["email"], ok.json()["username"]) == ("ada@example.org", "ada")
    assert "password_hash" not in ok.json()
    other = await client.get(
        f"/internal/users/{uid}", headers=await service_auth(client, "file-manager")
    )
    assert other.status_code == 403
    missing = await client.get(
        f"/internal/users/{uuid.uuid4()}", headers=await service_auth(client, "notification")
    )
    assert missing.status_code == 404


async def test_openapi_document_lists_the_public_routes(client):
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/auth/login",
        "/auth/register",
        "/users/me",
        "/users/me/api-tokens",
        "/users/me/service-credentials/{service_id}",
        "/.well-known/jwks.json",
    ):
        assert path in spec["paths"], path


async def test_notification_lists_who_holds_a_role(client, user_tokens, admin_auth):
    from .conftest import service_auth

    auth = await service_auth(client, "notification")
    admins = await client.get("/internal/users?role=admin", headers=auth)
    assert admins.status_code == 200, admins.text
    assert [u["username"] for u in admins.json()["items"]] == ["root"]
    both = await client.get("/internal/users?role=admin&role=researcher", headers=auth)
    assert sorted(u["username"] for u in both.json()["items"]) == ["ada", "root"]
    assert (await client.get("/internal/users?role=wizard", headers=auth)).status_code == 422
    assert (await client.get("/internal/users", headers=auth)).status_code == 422
    other = await client.get(
        "/internal/users?role=admin", headers=await service_auth(client, "job-processor")
    )
    assert other.status_code == 403
    assert (
        await client.get("/internal/users?role=admin", headers=bearer(user_tokens["access_token"]))
    ).status_code == 401


async def test_deactivation_and_role_revocation_are_pushed_to_every_service(
    client, admin_auth, user_tokens, redis
):
    """Issue 10 item 19: the other services learn at once (fedimpute_shared.revocation) and
    refuse the user's access tokens issued until then; this service does too."""
    from fedimpute_shared.revocation import KEY_PREFIX, REVOKED_USERS_CHANNEL

    uid = user_tokens["user_id"]
    pubsub = redis.pubsub()
    await pubsub.subscribe(REVOKED_USERS_CHANNEL)
    await pubsub.get_message(timeout=1)
    grant = (
        await client.post(f"/users/{uid}/roles", json={"role": "viewer"}, headers=admin_auth)
    ).json()
    await client.delete(f"/users/{uid}/roles/{grant['id']}", headers=admin_auth)
    await client.post(f"/users/{uid}/deactivate", headers=admin_auth)
    told = []
    for _ in range(2):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None
        told.append(message["data"].decode().split()[0])
    await pubsub.aclose()
    assert told == [uid, uid]
    assert await redis.get(f"{KEY_PREFIX}{uid}") is not None
    refused = await client.get("/users/me/audit-log", headers=bearer(user_tokens["access_token"]))
    assert refused.status_code == 401
