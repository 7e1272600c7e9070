"""Issue 10 item 10 in user-service: the exchange tells the gateway "the API token you carry is
bad" (422) apart from "your own service token is bad" (401), so the gateway re-mints its
service token only when that is the problem — not once per guessed ``fgi_`` token."""

from .conftest import service_auth


async def test_an_unknown_api_token_is_422_not_401(client):
    auth = await service_auth(client, "api-gateway")
    for guess in ["fgi_" + "x" * 40, "not-even-an-api-token"]:
        response = await client.post(
            "/internal/api-tokens/exchange", json={"token": guess}, headers=auth
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "www-authenticate" not in response.headers


async def test_a_bad_service_token_is_still_401(client):
    response = await client.post(
        "/internal/api-tokens/exchange",
        json={"token": "fgi_" + "x" * 40},
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    assert response.status_code == 401
