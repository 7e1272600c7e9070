"""Issue 10 item 10: a bad ``fgi_`` token is the client's problem (401), not a sign that the
gateway's own service token expired: a guess costs one exchange, never a re-mint. Only a 401
about the gateway's own credential re-mints it (once); if that does not help either, the client
gets a 503, not a 401 blaming its token."""

from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer

from .support import problem


async def test_bad_api_token_guesses_cost_one_exchange_each_and_no_re_mint(client, upstream_logs):
    for n in range(3):
        response = await client.get("/api/jobs", headers=bearer(f"fgi_guess{n:030d}"))
        assert response.status_code == 401
        assert "invalid, expired or revoked" in problem(response)["detail"]
    assert upstream_logs["user-service"].exchanges == 3
    assert upstream_logs["user-service"].service_tokens == 1


async def test_a_refused_gateway_credential_is_re_minted_once_then_a_503(make_app, upstream_logs):
    log = upstream_logs["user-service"]
    log.refuse_service_tokens = True  # user-service stops accepting what it minted
    async with app_client(make_app()) as client:
        response = await client.get("/api/jobs", headers=bearer("fgi_" + "y" * 32))
    assert response.status_code == 503
    problem(response)
    assert log.service_tokens == 2  # the first one, and one re-mint
    assert log.exchanges == 2
