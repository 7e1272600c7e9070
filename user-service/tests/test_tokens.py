"""Access tokens and the JWKS (verified by the shared TokenVerifier), forgeries, refresh
rotation with theft detection, logout, password change, key rotation."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from sqlalchemy import select

from fedimpute_shared.auth import JWKSCache, TokenVerifier
from fedimpute_shared.permissions import DEFAULT_ROLE_PERMISSIONS, Role
from fedimpute_shared.testing.client import app_client
from user_service.models import AuditEvent, AuthSession, RefreshToken
from user_service.security.keys import generate_key_file, load_key

from .conftest import PASSWORD, bearer, login, register


def _verifier(http: httpx.AsyncClient, service_name="job-processor") -> TokenVerifier:
    """The shared verifier of any other service, fetching our JWKS over HTTP."""
    jwks = JWKSCache(str(http.base_url.join("/.well-known/jwks.json")), http)
    return TokenVerifier(
        jwks, issuer="fedimpute-user-service", audience="fedimpute-api", service_name=service_name
    )


async def test_access_token_has_exactly_the_contract_claims(client, user_tokens):
    token = user_tokens["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.get_unverified_claims(token)
    assert header["alg"] == "RS256"
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert header["kid"] in {k["kid"] for k in keys}
    assert set(claims) == {
        "iss",
        "aud",
        "sub",
        "typ",
        "roles",
        "scopes",
        "iat",
        "iat_ms",
        "exp",
        "jti",
        "sid",
    }
    assert claims["iss"] == "fedimpute-user-service"
    assert claims["aud"] == "fedimpute-api"
    assert claims["typ"] == "access"
    assert claims["sub"] == user_tokens["user_id"]
    assert claims["roles"] == ["researcher"]
    assert set(claims["scopes"]) == {str(s) for s in DEFAULT_ROLE_PERMISSIONS[Role.RESEARCHER]}
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 5


async def test_jwks_publishes_only_public_material(client):
    response = await client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_shared_token_verifier_accepts_our_tokens_through_our_jwks(make_app, db):
    app = make_app()
    async with app_client(app) as c:
        await register(c)
        tokens = await login(c)
        principal = await _verifier(c).verify_access(tokens["access_token"])
        assert principal.user_id == uuid.UUID(
            jwt.get_unverified_claims(tokens["access_token"])["sub"]
        )
        assert principal.has_role("researcher")
        assert principal.has_scope("jobs:write")


async def test_forged_x_user_id_header_is_ignored(client, user_auth, admin_auth):
    admin_me = (await client.get("/users/me", headers=admin_auth)).json()
    response = await client.get("/users/me", headers=user_auth | {"X-User-ID": admin_me["id"]})
    assert response.json()["username"] == "ada"
    anonymous = await client.get("/users/me", headers={"X-User-ID": admin_me["id"]})
    assert anonymous.status_code == 401


class Forger:
    """Forgeries aimed at a real user: signed with *our* key but with bad claims, or naming our
    kid with a forged signature, or from the shared test issuer (a key we never published)."""

    def __init__(self, signing_key, user_id, token_issuer):
        self.key = load_key(signing_key, need_private=True)
        self.public_pem = jwk.construct(self.key.public_jwk, "RS256").to_pem().decode()
        self.user_id = user_id
        self.issuer = token_issuer

    def claims(self, **overrides):
        now = int(time.time())
        return {
            "iss": "fedimpute-user-service",
            "aud": "fedimpute-api",
            "sub": self.user_id,
            "typ": "access",
            "roles": ["admin"],
            "scopes": ["users:admin", "audit:read"],
            "iat": now,
            "exp": now + 900,
            "jti": uuid.uuid4().hex,
        } | overrides

    def ours(self, **overrides):
        return jwt.encode(
            self.claims(**overrides),
            self.key.signer,
            algorithm="RS256",
            headers={"kid": self.key.kid},
        )

    def _unsigned_input(self, alg):
        header = {"alg": alg, "typ": "JWT", "kid": self.key.kid}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims()).encode())}"

    def alg_none(self):
        return self._unsigned_input("none") + "."

    def hs256_with_our_public_key(self):
        signing_input = self._unsigned_input("HS256")
        mac = hmac.new(self.public_pem.encode(), signing_input.encode(), hashlib.sha256)
        return f"{signing_input}.{_b64(mac.digest())}"

    def stranger_with_our_kid(self):
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = stranger.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return jwt.encode(self.claims(), pem, algorithm="RS256", headers={"kid": self.key.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda f: f.ours(exp=int(time.time()) - 120), "expired"),
        (lambda f: f.ours(aud="someone-else"), "claims"),
        (lambda f: f.ours(iss="https://evil.example"), "claims"),
        (lambda f: f.ours(typ="service"), "access token"),
        (lambda f: f.ours(sub="alice"), "subject"),
        (lambda f: f.alg_none(), "algorithm"),
        (lambda f: f.hs256_with_our_public_key(), "algorithm"),
        (lambda f: f.stranger_with_our_kid(), "signature"),
        (lambda f: f.issuer.access_token(f.user_id, roles=["admin"]), "unknown key"),
        (lambda f: f.issuer.unsigned_token(sub=f.user_id), "algorithm"),
        (lambda f: f.issuer.hs256_with_public_key(sub=f.user_id), "algorithm"),
        (lambda f: "not.a.jwt", "malformed"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "service-typ",
        "non-uuid-subject",
        "alg-none",
        "hs256-public-key",
        "stranger-key-our-kid",
        "unknown-kid",
        "issuer-alg-none",
        "issuer-hs256",
        "garbage",
    ],
)
async def test_forged_tokens_are_refused(
    client, user_tokens, token_issuer, settings, forge, reason
):
    forger = Forger(settings.jwt_signing_key_file, user_tokens["user_id"], token_issuer)
    response = await client.get("/users/me", headers=bearer(forge(forger)))
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    # The same forgeries never reach admin routes either.
    assert (await client.get("/users", headers=bearer(forge(forger)))).status_code == 401


async def test_service_token_is_not_a_user_token(client, user_tokens):
    response = await client.post(
        "/internal/service-tokens",
        json={
            "client_id": "job-processor",
            "client_secret": "dev-service-secret-change-me",
            "audience": "fedimpute-api",
        },
    )
    assert response.status_code == 422  # only service names are audiences


async def test_refresh_rotates_the_token(client, user_tokens):
    first = user_tokens["refresh_token"]
    response = await client.post("/auth/refresh", json={"refresh_token": first})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first
    assert (
        jwt.get_unverified_claims(second["access_token"])["sid"]
        == jwt.get_unverified_claims(user_tokens["access_token"])["sid"]
    )
    again = await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 200


async def test_reused_refresh_token_revokes_the_whole_family(client, user_tokens, db):
    first = user_tokens["refresh_token"]
    rotated = (await client.post("/auth/refresh", json={"refresh_token": first})).json()
    reuse = await client.post("/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["detail"]
    # The thief's (or the victim's) newer token is dead too.
    later = await client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert later.status_code == 401
    session = await db.scalar(select(AuthSession))
    assert session.revoke_reason == "refresh_token_reused"
    audit = await db.scalar(
        select(AuditEvent).where(AuditEvent.action == "auth.refresh_token_reused")
    )
    assert audit.target_id == user_tokens["user_id"]


async def test_refresh_tokens_are_stored_hashed(client, user_tokens, db):
    stored = (await db.scalars(select(RefreshToken.token_hash))).all()
    assert user_tokens["refresh_token"] not in stored
    assert all(len(h) == 64 for h in stored)


async def test_unknown_refresh_token_is_401(client, db):
    response = await client.post("/auth/refresh", json={"refresh_token": "fgr_nonsense"})
    assert response.status_code == 401


async def test_logout_ends_the_session(client, user_tokens):
    refresh = user_tokens["refresh_token"]
    assert (await client.post("/auth/logout", json={"refresh_token": refresh})).status_code == 204
    assert (await client.post("/auth/refresh", json={"refresh_token": refresh})).status_code == 401
    # Logging out twice, or with garbage, is still a quiet 204.
    assert (await client.post("/auth/logout", json={"refresh_token": refresh})).status_code == 204


async def test_session_ends_at_its_maximum_age(make_app, db, clock):
    async with app_client(make_app(session_max_age_seconds=3600)) as c:
        await register(c)
        tokens = await login(c)
        await clock.advance(3601)
        refreshed = await c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 401


async def test_password_change_ends_the_other_sessions_only(client, user_tokens):
    other = await login(client)  # a second device
    response = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "Marble-canyon-echoes-19"},
        headers=bearer(user_tokens["access_token"]),
    )
    assert response.status_code == 204
    mine = await client.post("/auth/refresh", json={"refresh_token": user_tokens["refresh_token"]})
    theirs = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert (mine.status_code, theirs.status_code) == (200, 401)
    assert (
        await client.post("/auth/login", json={"login": "ada", "password": PASSWORD})
    ).status_code == 401
    await login(client, "ada", "Marble-canyon-echoes-19")


async def test_password_change_needs_the_current_password_and_a_strong_new_one(client, user_auth):
    wrong = await client.post(
        "/users/me/password",
        json={"current_password": "nope-nope-nope", "new_password": "Marble-canyon-echoes-19"},
        headers=user_auth,
    )
    weak = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": "password12345"},
        headers=user_auth,
    )
    assert wrong.status_code == 403
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "body.new_password"


async def test_rotated_keys_old_tokens_keep_verifying(make_app, settings, db, tmp_path):
    async with app_client(make_app()) as c:
        await register(c)
        old_token = (await login(c))["access_token"]
    new_key = tmp_path / "new.pem"
    generate_key_file(new_key, "ES256")
    rotated = make_app(
        jwt_signing_key_file=new_key, jwt_verification_key_files=[settings.jwt_signing_key_file]
    )
    async with app_client(rotated) as c:
        keys = (await c.get("/.well-known/jwks.json")).json()["keys"]
        assert [k["alg"] for k in keys] == ["ES256", "RS256"]
        assert (await c.get("/users/me", headers=bearer(old_token))).status_code == 200
        new_token = (await login(c))["access_token"]
        assert jwt.get_unverified_header(new_token)["alg"] == "ES256"
        assert (
            jwt.get_unverified_header(new_token)["kid"] == load_key(new_key, need_private=True).kid
        )
        principal = await _verifier(c).verify_access(new_token)
        assert principal.subject == jwt.get_unverified_claims(old_token)["sub"]
    # Once the old key is dropped, its tokens stop verifying.
    async with app_client(make_app(jwt_signing_key_file=new_key)) as c:
        response = await c.get("/users/me", headers=bearer(old_token))
        assert response.status_code == 401


async def test_deactivated_users_token_is_refused(client, user_tokens, admin_auth):
    await client.post(f"/users/{user_tokens['user_id']}/deactivate", headers=admin_auth)
    response = await client.get("/users/me", headers=bearer(user_tokens["access_token"]))
    assert response.status_code == 401
    refresh = await client.post(
        "/auth/refresh", json={"refresh_token": user_tokens["refresh_token"]}
    )
    assert refresh.status_code == 401


async def test_stolen_token_cannot_guess_the_password(client, user_tokens, user_auth):
    """Re-authentication shares the login lockout: five wrong guesses lock the account."""
    for _ in range(5):
        wrong = await client.post(
            "/users/me/password",
            json={
                "current_password": "guess-guess-guess",
                "new_password": "Marble-canyon-echoes-19",
            },
            headers=user_auth,
        )
        assert wrong.status_code == 403
    right = await client.put(
        "/users/me/email",
        json={"new_email": "new@example.org", "current_password": PASSWORD},
        headers=user_auth,
    )
    assert right.status_code == 429
    login_now = await client.post("/auth/login", json={"login": "ada", "password": PASSWORD})
    assert login_now.status_code == 429


async def test_list_and_end_my_sessions(client, user_tokens, user_auth):
    other = await login(client)
    listed = (await client.get("/users/me/sessions", headers=user_auth)).json()
    assert len(listed) == 2
    mine = next(s for s in listed if s["current"])
    theirs = next(s for s in listed if not s["current"])
    assert mine["ip"] == "127.0.0.1"
    ended = await client.delete(f"/users/me/sessions/{theirs['id']}", headers=user_auth)
    assert ended.status_code == 204
    refused = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refused.status_code == 401
    assert [
        s["id"] for s in (await client.get("/users/me/sessions", headers=user_auth)).json()
    ] == [mine["id"]]
    again = await client.delete(f"/users/me/sessions/{theirs['id']}", headers=user_auth)
    assert again.status_code == 404


async def test_another_users_session_is_404(client, user_tokens):
    await register(client, username="bob", email="bob@example.org")
    bob = bearer((await login(client, "bob"))["access_token"])
    sid = jwt.get_unverified_claims(user_tokens["access_token"])["sid"]
    assert (await client.delete(f"/users/me/sessions/{sid}", headers=bob)).status_code == 404
    refresh = await client.post(
        "/auth/refresh", json={"refresh_token": user_tokens["refresh_token"]}
    )
    assert refresh.status_code == 200
