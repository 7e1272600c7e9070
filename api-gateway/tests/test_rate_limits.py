"""Rate limiting in Redis: classes, keys (user or IP, trusted proxies), headers, Redis down."""

import re
import uuid

import pytest
from redis.asyncio import Redis

from api_gateway.metrics import GatewayMetrics
from api_gateway.ratelimit import RateLimiter, parse_rate
from api_gateway.redis_pipe import RedisPipe
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer

from .support import problem, read_metrics

LOGIN = {"username": "victim", "password": "guess"}


async def test_brute_force_login_hits_the_strict_limit(client, upstream_logs):
    statuses = [(await client.post("/api/auth/login", json=LOGIN)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    refused = await client.post("/api/auth/login", json=LOGIN)
    assert refused.status_code == 429
    body = problem(refused)
    assert body["type"].endswith("/rate-limited")
    assert body["limit_class"] == "login"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 12  # one request every 60/5 = 12 s
    assert refused.headers["ratelimit-policy"] == '"login";q=5;w=60'
    assert re.fullmatch(r'"login";r=0;t=\d+', refused.headers["ratelimit"])
    assert len(upstream_logs["user-service"].requests) == 5  # the 6th never left the gateway


async def test_login_is_limited_by_ip_even_with_a_token(client, token_issuer):
    for _ in range(5):
        await client.post(
            "/api/auth/login", json=LOGIN, headers=bearer(token_issuer.access_token())
        )
    response = await client.post(
        "/api/auth/login", json=LOGIN, headers=bearer(token_issuer.access_token())
    )
    assert response.status_code == 429


async def test_headers_count_down_in_ietf_draft_format(client, user):
    first = await client.get("/api/jobs", headers=user)
    second = await client.get("/api/jobs", headers=user)
    assert first.headers["ratelimit-policy"] == '"default";q=1000;w=60'
    assert first.headers["ratelimit"].startswith('"default";r=999;t=')
    assert second.headers["ratelimit"].startswith('"default";r=998;t=')


async def test_limits_hold_when_redis_forgets_the_script(make_app, user, redis_db_url):
    """The script runs by its SHA: Redis answers NOSCRIPT on the first call, after a restart
    or a SCRIPT FLUSH; the limiter loads it and counts the request all the same."""
    async with app_client(make_app(rate_limit_default="3/60")) as client:
        first = await client.get("/api/jobs", headers=user)
        redis = Redis.from_url(redis_db_url)
        try:
            await redis.script_flush()
        finally:
            await redis.aclose()
        rest = [await client.get("/api/jobs", headers=user) for _ in range(3)]
    assert first.headers["ratelimit"].startswith('"default";r=2;')
    assert [r.status_code for r in rest] == [200, 200, 429]


async def test_huge_quotas_still_count(make_app, user, token_issuer):
    """An emission interval below a millisecond must still store the bucket (PX >= 1)."""
    async with app_client(make_app(rate_limit_default="1000000000/60")) as client:
        first = await client.get("/api/jobs", headers=user)
        metrics = await read_metrics(client, token_issuer)
    assert first.headers["ratelimit"].startswith('"default";r=')
    assert "gateway_rate_limit_unavailable_total 0.0" in metrics


async def test_users_have_their_own_buckets(make_app, token_issuer):
    alice = bearer(token_issuer.access_token())
    bob = bearer(token_issuer.access_token())
    async with app_client(make_app(rate_limit_default="2/60")) as client:
        assert (await client.get("/api/jobs", headers=alice)).status_code == 200
        assert (await client.get("/api/jobs", headers=alice)).status_code == 200
        assert (await client.get("/api/jobs", headers=alice)).status_code == 429
        assert (await client.get("/api/jobs", headers=bob)).status_code == 200


async def test_upload_routes_have_their_own_class(make_app, user):
    async with app_client(make_app(rate_limit_upload="1/60")) as client:
        upload = await client.post(
            "/api/files", content=b"x" * 10, headers={**user, "Content-Type": "text/plain"}
        )
        assert upload.headers["ratelimit-policy"] == '"upload";q=1;w=60'
        again = await client.post(
            "/api/files", content=b"x", headers={**user, "Content-Type": "text/plain"}
        )
        assert again.status_code == 429
        assert (await client.get("/api/files", headers=user)).status_code == 200


async def test_failed_authentication_counts_against_the_ip(make_app, token_issuer):
    async with app_client(make_app(rate_limit_default="3/60")) as client:
        statuses = [
            (
                await client.get("/api/jobs", headers=bearer(token_issuer.unsigned_token()))
            ).status_code
            for _ in range(4)
        ]
    assert statuses == [401, 401, 401, 429]


async def test_guessed_api_tokens_are_throttled_before_user_service_is_asked(
    make_app, upstream_logs
):
    async def guess(client):
        return (
            await client.get("/api/jobs", headers=bearer(f"fgi_{uuid.uuid4().hex}"))
        ).status_code

    async with app_client(make_app(rate_limit_default="3/60")) as client:
        statuses = [await guess(client) for _ in range(3)]
        exchanges = upstream_logs["user-service"].exchanges
        statuses += [await guess(client) for _ in range(2)]
    assert statuses == [401, 401, 401, 429, 429]
    assert exchanges >= 3
    assert upstream_logs["user-service"].exchanges == exchanges  # the 429s cost nothing


XFF = {"X-Forwarded-For": "203.0.113.7"}


async def test_forwarded_for_is_ignored_from_untrusted_peers(make_app, upstream_logs):
    async with app_client(make_app(rate_limit_login="1/60")) as client:
        await client.post("/api/auth/login", json=LOGIN, headers=XFF)
        # another claimed address does not buy a new bucket
        response = await client.post(
            "/api/auth/login", json=LOGIN, headers={"X-Forwarded-For": "198.51.100.1"}
        )
    assert response.status_code == 429
    seen = upstream_logs["user-service"].requests[0]
    assert ["x-real-ip", "127.0.0.1"] in seen["headers"]
    assert ["x-forwarded-for", "127.0.0.1"] in seen["headers"]


async def test_forwarded_for_is_honoured_from_trusted_proxies(make_app, upstream_logs):
    app = make_app(rate_limit_login="1/60", trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"])
    async with app_client(app) as client:
        first = await client.post(
            "/api/auth/login", json=LOGIN, headers={"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}
        )
        other_client = await client.post(
            "/api/auth/login", json=LOGIN, headers={"X-Forwarded-For": "198.51.100.1"}
        )
        same_client = await client.post("/api/auth/login", json=LOGIN, headers=XFF)
    assert first.status_code == 200
    assert other_client.status_code == 200
    assert same_client.status_code == 429
    seen = upstream_logs["user-service"].requests[0]
    assert ["x-real-ip", "203.0.113.7"] in seen["headers"]
    assert ["x-forwarded-for", "203.0.113.7"] in seen["headers"]


async def test_redis_down_fails_open_by_default_and_is_counted(make_app, user, token_issuer):
    app = make_app(rate_limit_default="1/60")
    async with app_client(app) as client:
        gateway = app.state.gateway
        gateway.limiter = _limiter_on_dead_redis(gateway.metrics, fail_open=True)
        statuses = [(await client.get("/api/jobs", headers=user)).status_code for _ in range(3)]
        metrics = await read_metrics(client, token_issuer)
    assert statuses == [200, 200, 200]
    assert "gateway_rate_limit_unavailable_total 3.0" in metrics


async def test_redis_down_can_fail_closed(make_app, user):
    app = make_app()
    async with app_client(app) as client:
        gateway = app.state.gateway
        gateway.limiter = _limiter_on_dead_redis(gateway.metrics, fail_open=False)
        response = await client.get("/api/jobs", headers=user)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def _limiter_on_dead_redis(metrics: GatewayMetrics, *, fail_open: bool) -> RateLimiter:
    from fedimpute_shared.embedded import free_port

    dead = RedisPipe(f"redis://127.0.0.1:{free_port()}/2", timeout=0.2)
    rates = {name: parse_rate("1/60", name) for name in ("login", "upload", "default")}
    return RateLimiter(dead, rates, metrics, fail_open=fail_open, retry_after_error_seconds=0)


@pytest.mark.parametrize("spec", ["", "10", "0/60", "10/0", "ten/60", "10/60x"])
def test_bad_rate_specs_are_refused(spec):
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate(spec)


def test_rate_spec_units():
    assert parse_rate("10/1m").window == 60
    assert parse_rate("1000/1h").window == 3600
    assert parse_rate("5/30").quota == 5
