"""Personal API tokens: created once, listed, revoked (announced on Redis), exchanged by the
gateway for a short-lived JWT with the token's scopes that the owner still holds."""

import uuid
from datetime import datetime, timedelta

import pytest
from jose import jwt
from sqlalchemy import func, select, update

from fedimpute_shared.db import utcnow
from user_service.models import ApiToken, AuditEvent

from .conftest import bearer, login, register, service_auth


async def _create(client, auth, **overrides):
    body = {"name": "laptop", "scopes": ["jobs:read", "files:write"]} | overrides
    return await client.post("/users/me/api-tokens", json=body, headers=auth)


async def _exchange(client, token, caller="api-gateway"):
    return await client.post(
        "/internal/api-tokens/exchange",
        json={"token": token},
        headers=await service_auth(client, caller),
    )


async def test_token_is_shown_once_and_stored_hashed(client, user_auth, db):
    response = await _create(client, user_auth)
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["token"].startswith("fgi_")
    assert created["prefix"] == created["token"][:10]
    assert created["scopes"] == ["files:write", "jobs:read"]
    assert (
        timedelta(days=89)
        < (
            datetime.fromisoformat(created["expires_at"])
            - datetime.fromisoformat(created["created_at"])
        )
        <= timedelta(days=90)
    )
    listed = (await client.get("/users/me/api-tokens", headers=user_auth)).json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    stored = await db.scalar(select(ApiToken))
    assert stored.token_hash != created["token"]
    assert created["token"] not in str(stored.__dict__)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"expires_in_days": 366}, 422),
        ({"expires_in_days": 0}, 422),
        ({"scopes": []}, 422),
        ({"scopes": ["jobs:everything"]}, 422),
        ({"scopes": ["users:admin"]}, 422),  # a researcher does not hold it
        ({"name": ""}, 422),
        ({"name": "x" * 101}, 422),
    ],
    ids=[
        "over-a-year",
        "zero-days",
        "no-scopes",
        "unknown-scope",
        "scope-not-held",
        "no-name",
        "long-name",
    ],
)
async def test_bad_token_requests_are_refused(client, user_auth, db, body, status):
    response = await _create(client, user_auth, **body)
    assert response.status_code == status, response.text
    assert await db.scalar(select(ApiToken.id)) is None


async def test_a_year_is_the_maximum(client, user_auth):
    response = await _create(client, user_auth, expires_in_days=365)
    assert response.status_code == 201


async def test_names_are_unique_among_live_tokens(client, user_auth, db):
    first = (await _create(client, user_auth)).json()
    again = await _create(client, user_auth)
    assert again.status_code == 409
    assert again.json()["detail"] == f"you already have a token named {first['name']!r}"
    assert await db.scalar(select(func.count()).select_from(ApiToken)) == 1
    created = select(AuditEvent.target_id).where(AuditEvent.action == "api_token.created")
    assert (await db.scalars(created)).all() == [first["id"]]  # none for the refused one
    await client.delete(f"/users/me/api-tokens/{first['id']}", headers=user_auth)
    assert (await _create(client, user_auth)).status_code == 201


async def test_gateway_exchanges_a_token_for_a_short_lived_jwt(client, user_tokens, user_auth):
    created = (await _create(client, user_auth)).json()
    response = await _exchange(client, created["token"])
    assert response.status_code == 200
    body = response.json()
    assert body["token_id"] == created["id"]
    assert body["user_id"] == user_tokens["user_id"]
    assert body["expires_in"] == 900
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == user_tokens["user_id"]
    assert claims["typ"] == "access"
    assert claims["scopes"] == ["files:write", "jobs:read"]
    assert claims["api_token_id"] == created["id"]
    me = await client.get("/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    listed = (await client.get("/users/me/api-tokens", headers=user_auth)).json()
    assert listed[0]["last_used_at"] is not None


async def test_exchanged_jwt_cannot_mint_broader_tokens(client, user_auth):
    created = (await _create(client, user_auth, scopes=["jobs:read"])).json()
    narrow = bearer((await _exchange(client, created["token"])).json()["access_token"])
    response = await _create(client, narrow, name="wider", scopes=["files:write"])
    assert response.status_code == 403  # not even a narrower one: see item 2 below


async def test_revoked_token_is_refused_and_announced(client, user_auth, redis, settings, db):
    created = (await _create(client, user_auth)).json()
    pubsub = redis.pubsub()
    await pubsub.subscribe(settings.api_token_revoked_channel)
    await pubsub.get_message(timeout=1)  # the subscription confirmation
    response = await client.delete(f"/users/me/api-tokens/{created['id']}", headers=user_auth)
    assert response.status_code == 204
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await pubsub.aclose()
    assert message is not None
    assert message["data"].decode() == created["id"]
    refused = await _exchange(client, created["token"])
    assert refused.status_code == 422
    audit = await db.scalar(
        select(AuditEvent).where(AuditEvent.action == "api_token.exchange_refused")
    )
    assert audit.details["reason"] == "revoked"
    listed = await client.get("/users/me/api-tokens?include_revoked=true", headers=user_auth)
    assert listed.json()[0]["revoked_at"] is not None


async def test_expired_token_is_refused(client, user_auth, db):
    created = (await _create(client, user_auth)).json()
    await db.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    await db.commit()
    assert (await _exchange(client, created["token"])).status_code == 422


async def test_jwt_lifetime_never_outlives_the_token(client, user_auth, db):
    created = (await _create(client, user_auth)).json()
    await db.execute(update(ApiToken).values(expires_at=utcnow() + timedelta(seconds=60)))
    await db.commit()
    assert (await _exchange(client, created["token"])).json()["expires_in"] <= 60


@pytest.mark.parametrize(
    ("token", "status"), [("fgi_unknown", 422), ("eyJhbGciOi.x.y", 422), ("", 422)]
)
async def test_unknown_tokens_are_refused(client, db, token, status):
    response = await _exchange(client, token)
    assert response.status_code == status


async def test_token_names_are_data(client, user_auth):
    name = "<script>alert(1)</script> '; DROP TABLE api_tokens;--"
    created = await _create(client, user_auth, name=name)
    assert created.json()["name"] == name
    listed = (await client.get("/users/me/api-tokens", headers=user_auth)).json()
    assert [t["name"] for t in listed] == [name]


async def test_only_the_gateway_may_exchange(client, user_auth, user_tokens):
    created = (await _create(client, user_auth)).json()
    assert (await _exchange(client, created["token"], caller="job-processor")).status_code == 403
    as_user = await client.post(
        "/internal/api-tokens/exchange", json={"token": created["token"]}, headers=user_auth
    )
    assert as_user.status_code == 401


async def test_lost_role_narrows_the_next_exchange(client, user_tokens, user_auth, admin_auth):
    created = (await _create(client, user_auth)).json()
    user_id = user_tokens["user_id"]
    detail = (await client.get(f"/users/{user_id}", headers=admin_auth)).json()
    researcher = next(g for g in detail["grants"] if g["role"] == "researcher")
    await client.post(f"/users/{user_id}/roles", json={"role": "viewer"}, headers=admin_auth)
    await client.delete(f"/users/{user_id}/roles/{researcher['id']}", headers=admin_auth)
    claims = jwt.get_unverified_claims(
        (await _exchange(client, created["token"])).json()["access_token"]
    )
    assert claims["scopes"] == ["jobs:read"]  # files:write went with the researcher role


async def test_another_users_token_is_404(client, user_auth):
    created = (await _create(client, user_auth)).json()
    await register(client, username="bob", email="bob@example.org")
    bob = bearer((await login(client, "bob"))["access_token"])
    response = await client.delete(f"/users/me/api-tokens/{created['id']}", headers=bob)
    assert response.status_code == 404
    assert (
        await client.delete(f"/users/me/api-tokens/{uuid.uuid4()}", headers=bob)
    ).status_code == 404


async def test_deactivation_announces_every_live_token(
    client, user_tokens, user_auth, admin_auth, redis, settings
):
    first = (await _create(client, user_auth)).json()
    second = (await _create(client, user_auth, name="ci")).json()
    pubsub = redis.pubsub()
    await pubsub.subscribe(settings.api_token_revoked_channel)
    await pubsub.get_message(timeout=1)
    await client.post(f"/users/{user_tokens['user_id']}/deactivate", headers=admin_auth)
    received = set()
    for _ in range(2):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        if message:
            received.add(message["data"].decode())
    await pubsub.aclose()
    assert received == {first["id"], second["id"]}
    assert (await _exchange(client, first["token"])).status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/users/me/api-tokens", None),
        ("POST", "/users/me/api-tokens", {"name": "forever", "scopes": ["files:read"]}),
        ("DELETE", "/users/me/api-tokens/{token_id}", None),
        ("PATCH", "/users/me", {"full_name": "Mallory"}),
        ("POST", "/users/me/password", {"current_password": "x", "new_password": "y" * 20}),
        ("PUT", "/users/me/email", {"current_password": "x", "new_email": "m@example.org"}),
        ("GET", "/users/me/sessions", None),
        ("DELETE", "/users/me/sessions/{session_id}", None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_an_api_token_cannot_manage_the_account(
    client, user_auth, user_tokens, method, path, body
):
    """Issue 10 item 2: a leaked files:read script token must not mint a 365-day token, revoke
    the owner's other tokens, end their sessions or change the account."""
    created = (await _create(client, user_auth, scopes=["files:read"])).json()
    exchanged = (await _exchange(client, created["token"])).json()
    script = bearer(exchanged["access_token"])
    sessions = (await client.get("/users/me/sessions", headers=user_auth)).json()
    url = path.format(token_id=created["id"], session_id=sessions[0]["id"])
    response = await client.request(method, url, json=body, headers=script)
    assert response.status_code == 403, response.text
    assert "interactive login" in response.json()["detail"]
    # ... while the token still works for what it is for, and the login can do all of it.
    assert (await client.get("/users/me", headers=script)).status_code == 200
    listed = await client.get("/users/me/api-tokens", headers=user_auth)
    assert [t["id"] for t in listed.json()] == [created["id"]]
