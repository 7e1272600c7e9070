"""Authentication at the edge: forged JWTs, identity headers, API tokens and their revocation."""

import asyncio
import logging
import time
import uuid

import pytest
from jose import jwt
from redis.asyncio import Redis

from api_gateway.api_tokens import REVOCATION_CHANNEL
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer

from .support import ApiToken, problem, seen_header

FORGERIES = {
    "wrong key": lambda i: i.token_signed_by_stranger(),
    "alg none": lambda i: i.unsigned_token(),
    "hs256 with the public key": lambda i: i.hs256_with_public_key(),
    "expired": lambda i: i.access_token(expires_in=-120),
    "wrong audience": lambda i: i.access_token(aud="some-other-api"),
    "wrong issuer": lambda i: i.access_token(iss="evil-issuer"),
    "unknown kid": lambda i: i.sign(
        {"sub": str(uuid.uuid4()), "typ": "access"}, headers={"kid": "no-such-key"}
    ),
    "service token": lambda i: i.service_token("job-processor", "fedimpute-api"),
    "subject not a user": lambda i: i.access_token(sub="service:job-processor"),
    "garbage": lambda i: "not.a.jwt",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_forged_tokens_are_refused_before_any_service(
    client, token_issuer, upstream_logs, forgery
):
    token = FORGERIES[forgery](token_issuer)
    response = await client.get("/api/jobs", headers=bearer(token))
    assert response.status_code == 401
    body = problem(response)
    assert body["type"].endswith("/unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not upstream_logs["job-processor"].requests


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}],
)
async def test_protected_routes_need_a_bearer_token(client, upstream_logs, headers):
    response = await client.get("/api/files", headers=headers)
    assert response.status_code == 401
    assert "bearer token" in problem(response)["detail"]
    assert not upstream_logs["file-manager"].requests


async def test_a_valid_jwt_is_forwarded_as_is(client, user_token, upstream_logs):
    response = await client.get("/api/jobs", headers=bearer(user_token))
    assert response.status_code == 200
    assert seen_header(response.json(), "authorization") == [f"Bearer {user_token}"]


async def test_client_identity_headers_are_stripped(client, user, token_issuer):
    forged = {
        **user,
        "X-User-ID": str(uuid.uuid4()),
        "X-User-Roles": "admin",
        "x-user-scopes": "users:admin",
        "X-Forwarded-For": "10.9.9.9",
        "X-Real-IP": "10.9.9.9",
        "Forwarded": "for=10.9.9.9",
    }
    response = await client.get("/api/users/me", headers=forged)
    seen = response.json()
    names = {name for name, _ in seen["headers"]}
    assert not any(name.startswith("x-user-") for name in names)
    assert "forwarded" not in names
    assert seen_header(seen, "x-forwarded-for") == ["127.0.0.1"]
    assert seen_header(seen, "x-real-ip") == ["127.0.0.1"]


async def test_anonymous_client_cannot_inject_identity_headers_on_public_routes(
    client, upstream_logs
):
    response = await client.post(
        "/api/auth/login", json={"username": "a", "password": "b"}, headers={"X-User-ID": "1"}
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen_header(seen, "x-user-id") == []
    assert seen_header(seen, "authorization") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password-reset"),
        ("POST", "/api/auth/password-reset/request"),
        ("POST", "/api/auth/password-reset/confirm"),
        ("POST", "/api/auth/verify-email/confirm"),
        ("POST", "/api/auth/unlock"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/status"),
        ("GET", "/api/status/services"),
    ],
)
async def test_public_routes_need_no_token(client, method, path):
    response = await client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 200, response.text


async def test_public_route_with_a_bad_token_is_served_anonymously(client, token_issuer):
    response = await client.post(
        "/api/auth/login", json={}, headers=bearer(token_issuer.unsigned_token())
    )
    assert response.status_code == 200
    assert seen_header(response.json(), "authorization") == []


async def test_other_auth_routes_are_not_public(client):
    response = await client.post("/api/auth/sessions", json={})
    assert response.status_code == 401


# ------------------------------------------------------------------ API tokens


def new_api_token(api_tokens, **kwargs) -> tuple[str, ApiToken]:
    raw = "fgi_" + uuid.uuid4().hex
    token = ApiToken(user_id=str(uuid.uuid4()), **kwargs)
    api_tokens[raw] = token
    return raw, token


async def wait_subscribed(app) -> None:
    await asyncio.wait_for(app.state.revocations.subscribed.wait(), 5)


async def test_api_token_is_exchanged_and_upstream_sees_only_the_jwt(
    make_app, api_tokens, upstream_logs, token_issuer
):
    raw, token = new_api_token(api_tokens, scopes=("jobs:read", "files:read"))
    app = make_app()
    async with app_client(app) as client:
        await wait_subscribed(app)
        first = await client.get("/api/jobs", headers=bearer(raw))
        second = await client.get("/api/files", headers=bearer(raw))
    assert first.status_code == second.status_code == 200
    forwarded = seen_header(first.json(), "authorization")[0].removeprefix("Bearer ")
    assert forwarded.startswith("eyJ")
    assert raw not in first.text
    assert raw not in second.text
    claims = jwt.get_unverified_claims(forwarded)
    assert claims["sub"] == token.user_id
    assert claims["scopes"] == ["files:read", "jobs:read"]
    # exchanged once, then served from the cache; the service token was fetched once too
    assert upstream_logs["user-service"].exchanges == 1
    assert upstream_logs["user-service"].service_tokens == 1


async def test_unknown_api_token_is_401(client, upstream_logs):
    response = await client.get("/api/jobs", headers=bearer("fgi_" + "x" * 32))
    assert response.status_code == 401
    assert "invalid, expired or revoked" in problem(response)["detail"]
    assert not upstream_logs["job-processor"].requests


async def test_revoked_api_token_is_evicted_at_once(make_app, api_tokens, redis_db_url):
    raw, token = new_api_token(api_tokens)
    app = make_app()
    redis = Redis.from_url(redis_db_url)
    try:
        async with app_client(app) as client:
            await wait_subscribed(app)
            assert (await client.get("/api/jobs", headers=bearer(raw))).status_code == 200
            assert len(app.state.gateway.authenticator._exchanger) == 1
            token.revoked = True  # user-service revokes, then announces it
            await redis.publish(REVOCATION_CHANNEL, token.token_id)
            deadline = time.monotonic() + 5
            while len(app.state.gateway.authenticator._exchanger) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            response = await client.get("/api/jobs", headers=bearer(raw))
    finally:
        await redis.aclose()
    assert response.status_code == 401


async def test_without_the_revocation_channel_nothing_is_cached(
    make_app, api_tokens, upstream_logs
):
    raw, _ = new_api_token(api_tokens)
    app = make_app()
    async with app_client(app) as client:
        await wait_subscribed(app)
        app.state.revocations.stop()  # as if Redis went away: the listener leaves
        deadline = time.monotonic() + 5
        while app.state.revocations.subscribed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not app.state.revocations.subscribed.is_set()
        for _ in range(2):
            assert (await client.get("/api/jobs", headers=bearer(raw))).status_code == 200
    assert upstream_logs["user-service"].exchanges == 2


async def test_api_tokens_give_503_when_user_service_is_down(make_app, api_tokens):
    from fedimpute_shared.embedded import free_port

    raw, _ = new_api_token(api_tokens)
    async with app_client(make_app(user_service_url=f"http://127.0.0.1:{free_port()}")) as client:
        response = await client.get("/api/jobs", headers=bearer(raw))
    assert response.status_code == 503
    assert problem(response)["status"] == 503


async def test_tokens_never_reach_the_logs(client, api_tokens, user_token, caplog):
    raw, _ = new_api_token(api_tokens)
    caplog.set_level(logging.DEBUG)
    await client.get("/api/jobs", headers=bearer(user_token))
    await client.get("/api/jobs", headers=bearer(raw))
    await client.get("/api/jobs", headers=bearer(raw[:-1] + "z"))
    await client.get("/api/jobs", headers=bearer(user_token[:-4] + "abcd"))
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert caplog.records
    assert user_token not in text
    assert user_token[:-4] not in text
    assert raw not in text
    assert raw[:-1] not in text
