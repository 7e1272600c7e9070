"""Token verification through a real JWKS endpoint, and the forgeries it must refuse."""

import time
import uuid

import httpx
import pytest
from jose import jwt

from fedimpute_shared import auth
from fedimpute_shared.auth import JWKSCache, TokenError, TokenVerifier
from fedimpute_shared.testing.tokens import bearer


async def test_valid_access_token_is_accepted(client, token_issuer):
    response = await client.get("/widgets", headers=bearer(token_issuer.access_token()))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_missing_token_is_401_with_challenge(client):
    response = await client.get("/widgets")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda i: i.access_token(expires_in=-120), "expired"),
        (lambda i: i.access_token(aud="someone-else"), "claims"),
        (lambda i: i.access_token(iss="https://evil.example"), "claims"),
        (lambda i: i.unsigned_token(), "algorithm"),
        (lambda i: i.hs256_with_public_key(), "algorithm"),
        (lambda i: i.token_signed_by_stranger(), "signature"),
        (lambda i: i.access_token(typ="service"), "access token"),
        (lambda i: "not.a.jwt", "malformed"),
        (lambda i: i.sign({"sub": "x"}, headers={"kid": "unknown-kid"}), "unknown key"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "alg-none",
        "hs256-public-key",
        "stranger-key",
        "service-typ",
        "garbage",
        "unknown-kid",
    ],
)
async def test_forged_tokens_are_401(client, token_issuer, forge, reason):
    response = await client.get("/widgets", headers=bearer(forge(token_issuer)))
    assert response.status_code == 401
    assert reason in response.json()["detail"]


def _without_audience(issuer) -> str:
    claims = jwt.get_unverified_claims(issuer.access_token())
    claims.pop("aud")
    return issuer.sign(claims)


async def test_token_without_audience_is_refused(client, token_issuer):
    """Issue 10 item 18: python-jose skips the audience check when ``aud`` is absent."""
    response = await client.get("/widgets", headers=bearer(_without_audience(token_issuer)))
    assert response.status_code == 401
    assert "aud" in response.json()["detail"]


async def test_service_token_without_audience_is_refused(client, token_issuer):
    claims = jwt.get_unverified_claims(token_issuer.service_token("job-processor", "demo"))
    claims.pop("aud")
    response = await client.get("/internal/whoami", headers=bearer(token_issuer.sign(claims)))
    assert response.status_code == 401


async def test_non_uuid_subject_is_refused(client, token_issuer):
    response = await client.get("/widgets", headers=bearer(token_issuer.access_token(sub="alice")))
    assert response.status_code == 401


async def test_role_check_is_403(client, token_issuer):
    token = token_issuer.access_token(roles=["viewer"])
    response = await client.post("/widgets", json={"name": "x"}, headers=bearer(token))
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


async def test_internal_route_needs_service_token_for_us(client, token_issuer):
    ok = await client.get(
        "/internal/whoami", headers=bearer(token_issuer.service_token("job-processor", "demo"))
    )
    assert ok.json() == {"service": "job-processor"}
    other_audience = token_issuer.service_token("job-processor", "file-manager")
    assert (await client.get("/internal/whoami", headers=bearer(other_audience))).status_code == 401
    user = token_issuer.access_token(roles=["admin"])
    assert (await client.get("/internal/whoami", headers=bearer(user))).status_code == 401


async def test_rotation_new_kid_triggers_one_refetch(token_issuer):
    async with httpx.AsyncClient() as http:
        cache = JWKSCache(token_issuer.jwks_url, http, min_refresh_seconds=0)
        verifier = TokenVerifier(
            cache, issuer=token_issuer.issuer, audience=token_issuer.audience, service_name="demo"
        )
        await verifier.verify_access(token_issuer.access_token())
        before = token_issuer.jwks_requests
        await verifier.verify_access(token_issuer.access_token())
        assert token_issuer.jwks_requests == before  # cached
        token_issuer.rotate()
        principal = await verifier.verify_access(token_issuer.access_token(roles=["viewer"]))
        assert principal.roles == {"viewer"}
        assert token_issuer.jwks_requests == before + 1


async def test_unknown_kid_refetch_is_rate_limited(token_issuer):
    async with httpx.AsyncClient() as http:
        cache = JWKSCache(token_issuer.jwks_url, http, min_refresh_seconds=60)
        await cache.get(token_issuer.published[-1]["kid"])
        before = token_issuer.jwks_requests
        for _ in range(20):
            with pytest.raises(TokenError):
                await cache.get(f"random-{uuid.uuid4()}")
        assert token_issuer.jwks_requests == before


async def test_jwks_unreachable_is_503(settings):
    from fedimpute_shared.problems import ServiceUnavailable

    async with httpx.AsyncClient() as http:
        cache = JWKSCache("http://127.0.0.1:9/.well-known/jwks.json", http)
        with pytest.raises(ServiceUnavailable):
            await cache.get("any")


def test_principal_helpers(token_issuer):
    from fedimpute_shared.auth import Principal

    p = Principal(
        subject=str(uuid.uuid4()),
        token_type="access",
        roles=frozenset({"admin"}),
        scopes=frozenset({"services:read", "users:admin"}),
    )
    assert p.is_admin
    assert p.has_scope("services:read")
    assert not p.has_scope("services:write")
    assert (
        Principal(subject="service:monitoring", token_type="service").service_name == "monitoring"
    )


def test_the_admin_role_alone_does_not_make_an_admin():
    """Issue 10 item 3: an admin's API token narrowed to files:read keeps the role, not the
    power: acting as an administrator needs the role *and* the admin scope."""
    from fedimpute_shared.auth import Principal

    def principal(roles, scopes):
        return Principal(
            subject=str(uuid.uuid4()),
            token_type="access",
            roles=frozenset(roles),
            scopes=frozenset(scopes),
        )

    assert not principal({"admin"}, {"files:read", "files:write"}).is_admin
    assert not principal({"researcher"}, {"users:admin"}).is_admin
    assert principal({"admin"}, {"users:admin"}).is_admin
    writer = principal({"service_admin"}, {"services:write"})
    assert writer.holds(("admin", "service_admin"), "services:write")
    assert not writer.holds(("admin",), "services:write")


async def test_require_admin_needs_role_and_scope(client, token_issuer):
    narrowed = token_issuer.access_token(roles=["admin"], scopes=["files:read"])
    response = await client.post("/widgets", json={"name": "x"}, headers=bearer(narrowed))
    assert response.status_code == 403
    assert "users:admin" in response.json()["detail"]
    full = token_issuer.access_token(roles=["admin"])
    response = await client.post("/widgets", json={"name": "x"}, headers=bearer(full))
    assert response.status_code == 201


# ---------------------------------------------------------------- verified tokens are kept


async def _verifier(token_issuer, http, **cache_options):
    cache = JWKSCache(token_issuer.jwks_url, http, **cache_options)
    return TokenVerifier(
        cache, issuer=token_issuer.issuer, audience=token_issuer.audience, service_name="demo"
    )


async def test_a_token_is_checked_once_then_served_from_the_cache(token_issuer, monkeypatch):
    decoded = []
    real_decode = auth._decode
    monkeypatch.setattr(
        auth, "_decode", lambda *a, **kw: decoded.append(1) or real_decode(*a, **kw)
    )
    async with httpx.AsyncClient() as http:
        verifier = await _verifier(token_issuer, http)
        token = token_issuer.access_token(roles=["viewer"])
        first = await verifier.verify_access(token)
        again = await verifier.verify_access(token)
        assert again == first
        assert again.roles == {"viewer"}
        assert len(decoded) == 1
        # the same token as a service token is a different question, checked (and refused)
        with pytest.raises(TokenError):
            await verifier.verify_service(token)


async def test_a_kept_token_is_refused_once_expired(token_issuer, monkeypatch):
    async with httpx.AsyncClient() as http:
        verifier = await _verifier(token_issuer, http)
        token = token_issuer.access_token(expires_in=60)
        await verifier.verify_access(token)
        later = time.time() + 60 + auth.CLOCK_LEEWAY_SECONDS + 1
        monkeypatch.setattr(auth.time, "time", lambda: later)
        with pytest.raises(TokenError, match="expired"):
            await verifier.verify_access(token)


async def test_a_kept_token_is_refused_once_its_key_is_withdrawn(token_issuer):
    async with httpx.AsyncClient() as http:
        verifier = await _verifier(
            token_issuer, http, ttl_seconds=0, min_refresh_seconds=0, withdrawn_grace_seconds=0
        )
        token = token_issuer.access_token()
        await verifier.verify_access(token)
        token_issuer.rotate()
        token_issuer.published = token_issuer.published[-1:]  # the old key is gone
        await verifier.verify_access(token_issuer.access_token())  # refetches the JWKS
        with pytest.raises(TokenError, match="unknown key"):
            await verifier.verify_access(token)


async def test_the_kept_tokens_are_bounded(token_issuer, monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    async with httpx.AsyncClient() as http:
        verifier = await _verifier(token_issuer, http)
        tokens = [token_issuer.access_token() for _ in range(5)]
        for token in tokens:
            await verifier.verify_access(token)
        assert [key[0] for key in verifier._verified] == tokens[2:]
