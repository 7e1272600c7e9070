"""Issue 10 item 11: the JWKS cache backs off while user-service is down (no refetch on every
request, none under the lock while backing off), and stops trusting keys the JWKS no longer
lists after a grace period — and every key once the JWKS has been unreachable too long."""

import asyncio
import time

import httpx
import pytest

from fedimpute_shared.auth import JWKSCache, TokenError
from fedimpute_shared.problems import ServiceUnavailable

KEY_A = {"kty": "RSA", "kid": "key-a", "n": "x", "e": "AQAB"}
KEY_B = {"kty": "RSA", "kid": "key-b", "n": "y", "e": "AQAB"}


class FakeJwks:
    """A JWKS endpoint whose answer the test changes; counts the requests."""

    def __init__(self, *keys: dict) -> None:
        self.keys = list(keys)
        self.down = False
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            raise httpx.ConnectError("user-service is down")
        return httpx.Response(200, json={"keys": self.keys})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


URL = "http://user-service/.well-known/jwks.json"


async def test_a_down_jwks_is_not_refetched_on_every_request():
    fake = FakeJwks(KEY_A)
    async with fake.client() as http:
        cache = JWKSCache(URL, http, ttl_seconds=0, min_refresh_seconds=0)
        assert await cache.get("key-a") == KEY_A
        fake.down = True
        before = fake.requests
        results = await asyncio.gather(*(cache.get("key-a") for _ in range(50)))
        for _ in range(50):
            results.append(await cache.get("key-a"))
            with pytest.raises(TokenError):
                await cache.get("some-unknown-kid")
    assert all(r == KEY_A for r in results)  # the keys we have keep serving meanwhile
    assert fake.requests - before == 1  # one attempt, then a backoff


async def test_the_backoff_retries_and_recovers():
    fake = FakeJwks(KEY_A)
    async with fake.client() as http:
        cache = JWKSCache(URL, http, ttl_seconds=0, min_refresh_seconds=0, retry_seconds=0.05)
        await cache.get("key-a")
        fake.down = True
        await cache.get("key-a")
        attempts = fake.requests
        await asyncio.sleep(0.08)
        await cache.get("key-a")  # the backoff is over: one more attempt (fails, doubles)
        assert fake.requests == attempts + 1
        await cache.get("key-a")
        assert fake.requests == attempts + 1  # now backing off 0.1 s
        fake.down = False
        fake.keys = [KEY_A, KEY_B]
        await asyncio.sleep(0.12)
        assert await cache.get("key-b") == KEY_B


async def test_a_withdrawn_key_is_dropped_after_the_grace_period():
    fake = FakeJwks(KEY_A, KEY_B)
    async with fake.client() as http:
        cache = JWKSCache(
            URL, http, ttl_seconds=0, min_refresh_seconds=0, withdrawn_grace_seconds=0.2
        )
        assert await cache.get("key-a") == KEY_A
        fake.keys = [KEY_B]  # key-a withdrawn (retired, or compromised)
        assert await cache.get("key-a") == KEY_A  # within the grace (replicas may disagree)
        await asyncio.sleep(0.25)
        with pytest.raises(TokenError):
            await cache.get("key-a")
        assert await cache.get("key-b") == KEY_B


async def test_keys_are_not_trusted_forever_while_the_jwks_is_unreachable():
    fake = FakeJwks(KEY_A)
    async with fake.client() as http:
        cache = JWKSCache(URL, http, ttl_seconds=0.05, min_refresh_seconds=0, max_stale_seconds=0.2)
        assert await cache.get("key-a") == KEY_A
        fake.down = True
        assert await cache.get("key-a") == KEY_A  # stale but recent: still served
        started = time.monotonic()
        await asyncio.sleep(0.25)
        with pytest.raises(ServiceUnavailable):
            await cache.get("key-a")
        assert time.monotonic() - started < 5
