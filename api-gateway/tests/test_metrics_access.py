"""Issue 10 item 14: the gateway's /metrics is for the monitoring network only.

It answers a service token addressed to the gateway (what the monitoring service scrapes with),
or a peer in ``METRICS_ALLOWED_NETWORKS`` (a Prometheus on the monitoring network); anyone else
gets a 401 problem."""

from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer

from .support import problem


async def test_metrics_are_not_public(client, user):
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    problem(anonymous)
    as_user = await client.get("/metrics", headers=user)
    assert as_user.status_code == 401
    assert "gateway_" not in anonymous.text + as_user.text


async def test_a_service_token_for_the_gateway_reads_metrics(client, token_issuer):
    scraper = bearer(token_issuer.service_token("monitoring", "api-gateway"))
    response = await client.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert "gateway_" in response.text
    other_audience = bearer(token_issuer.service_token("monitoring", "file-manager"))
    assert (await client.get("/metrics", headers=other_audience)).status_code == 401


async def test_the_monitoring_network_may_scrape_without_a_token(make_app):
    async with app_client(make_app(metrics_allowed_networks=["127.0.0.0/8"])) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "gateway_" in response.text


async def test_a_forwarded_address_does_not_open_metrics(make_app):
    """The allowlist is checked against the peer, never X-Forwarded-For."""
    app = make_app(metrics_allowed_networks=["10.9.0.0/16"], trusted_proxies=["127.0.0.0/8"])
    async with app_client(app) as client:
        response = await client.get("/metrics", headers={"X-Forwarded-For": "10.9.0.5"})
    assert response.status_code == 401
