"""Issue 10 item 19: a user deactivated, or stripped of a role, in user-service is refused by the registry
within a second (pushed over Redis), not at the end of their access token's life."""

import asyncio
import time
import uuid

from redis.asyncio import Redis

from fedimpute_shared.revocation import announce_user_revoked
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.tokens import bearer


async def _status_soon(client, headers, wanted, within=3.0):
    deadline = time.monotonic() + within
    while True:
        status = (await client.get("/services", headers=headers)).status_code
        if status == wanted or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


async def test_a_cut_users_tokens_are_refused_within_a_second(make_app, redis_url, token_issuer):
    cut_before_start, cut_while_running = uuid.uuid4(), uuid.uuid4()
    issued = int(time.time()) - 5
    redis = Redis.from_url(redis_url)
    try:
        await announce_user_revoked(redis, cut_before_start)
        app = make_app(redis_url=redis_url, outbox_relay_enabled=False)
        async with app_client(app) as client:
            running = bearer(token_issuer.access_token(cut_while_running, iat=issued))
            assert (await client.get("/services", headers=running)).status_code == 200
            started = time.monotonic()
            await announce_user_revoked(redis, cut_while_running)
            assert await _status_soon(client, running, 401) == 401
            assert time.monotonic() - started < 1.5
            # Announced while this replica was not listening: read from Redis at start.
            earlier = bearer(token_issuer.access_token(cut_before_start, iat=issued))
            assert await _status_soon(client, earlier, 401) == 401
            # A token issued after the cut (a new login, new roles) is accepted.
            fresh = bearer(token_issuer.access_token(cut_while_running, iat=int(time.time()) + 1))
            assert (await client.get("/services", headers=fresh)).status_code == 200
            other = bearer(token_issuer.access_token(uuid.uuid4(), iat=issued))
            assert (await client.get("/services", headers=other)).status_code == 200
    finally:
        await redis.aclose()
