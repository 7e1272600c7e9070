"""Service tokens: known clients with the right secret get a typ=service JWT for the callee."""

import pytest
from jose import jwt
from pydantic import SecretStr
from sqlalchemy import select

from fedimpute_shared.auth import JWKSCache, TokenError, TokenVerifier
from fedimpute_shared.fleet import SERVICE_NAMES
from user_service.models import AuditEvent
from user_service.tokens.schemas import ServiceTokenIn
from user_service.tokens.service import check_client

from .conftest import service_token_request


async def test_service_token_for_a_callee(client, db):
    response = await client.post(
        "/internal/service-tokens", json=service_token_request("job-processor", "file-manager")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["typ"] == "service"
    assert claims["aud"] == "file-manager"
    assert claims["sub"] == "service:job-processor"
    assert set(claims) == {"iss", "aud", "sub", "typ", "iat", "exp", "jti"}
    # file-manager's own shared verifier accepts it; another service's refuses it.
    jwks = JWKSCache("http://testserver/.well-known/jwks.json", client)
    callee, other = (
        TokenVerifier(
            jwks, issuer="fedimpute-user-service", audience="fedimpute-api", service_name=name
        )
        for name in ("file-manager", "service-registry")
    )
    principal = await callee.verify_service(body["access_token"])
    assert principal.service_name == "job-processor"
    with pytest.raises(TokenError, match="claims"):
        await other.verify_service(body["access_token"])


@pytest.mark.parametrize(
    ("client_id", "secret", "audience", "status"),
    [
        ("job-processor", "wrong-secret", "file-manager", 401),
        ("intruder", "dev-service-secret-change-me", "file-manager", 401),
        ("job-processor", "dev-service-secret-change-me", "somewhere-else", 422),
    ],
    ids=["wrong-secret", "unknown-client", "unknown-audience"],
)
async def test_bad_client_credentials(client, db, client_id, secret, audience, status):
    response = await client.post(
        "/internal/service-tokens", json=service_token_request(client_id, audience, secret)
    )
    assert response.status_code == status
    if status == 401:
        audit = await db.scalar(select(AuditEvent))
        assert (audit.action, audit.actor_id) == ("service_token.refused", client_id)


async def test_secrets_come_from_configuration(make_app, db):
    from fedimpute_shared.testing.client import app_client

    secrets = {
        name: SecretStr(f"{name}-0123456789abcdef0123456789abcdef") for name in SERVICE_NAMES
    }
    async with app_client(make_app(service_client_secrets=secrets)) as c:
        old = await c.post("/internal/service-tokens", json=service_token_request("monitoring"))
        new = await c.post(
            "/internal/service-tokens",
            json=service_token_request(
                "monitoring", secret=secrets["monitoring"].get_secret_value()
            ),
        )
    assert (old.status_code, new.status_code) == (401, 200)


def test_check_client_compares_whole_secrets(settings):
    good = ServiceTokenIn(
        client_id="api-gateway", client_secret="dev-service-secret-change-me", audience="x"
    )
    assert check_client(good, settings)
    for secret in (
        "dev-service-secret-change-m",
        "dev-service-secret-change-me!",
        "DEV-service-secret-change-me",
    ):
        assert not check_client(good.model_copy(update={"client_secret": secret}), settings)


async def test_internal_routes_refuse_user_tokens(client, user_auth):
    response = await client.post(
        "/internal/audit-events",
        json={"action": "x.y", "actor_type": "system"},
        headers=user_auth,
    )
    assert response.status_code == 401


async def test_service_token_is_refused_on_user_routes(client, db):
    response = await client.post(
        "/internal/service-tokens", json=service_token_request("job-processor", "user-service")
    )
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await client.get("/users/me", headers=headers)).status_code == 401
