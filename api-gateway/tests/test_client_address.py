"""Issue 10 item 6: rate limits cannot be escaped through X-Forwarded-For or IPv6 addresses.

Behind a trusted proxy that appends its own ``X-Forwarded-For`` line, the client's forged first
line must not win; IPv6 clients are counted per /64 (configurable), not per /128."""

from fedimpute_shared.testing.client import app_client

LOGIN = {"username": "victim", "password": "guess"}
PROXY = ["127.0.0.0/8"]  # the ASGI test client's peer is 127.0.0.1: it plays the proxy


async def _login(client, *forwarded: str):
    headers = [("X-Forwarded-For", value) for value in forwarded]
    return await client.post("/api/auth/login", json=LOGIN, headers=headers)


async def test_a_forged_first_line_does_not_beat_the_proxys_own_line(make_app, upstream_logs):
    async with app_client(make_app(rate_limit_login="1/60", trusted_proxies=PROXY)) as client:
        first = await _login(client, "198.51.100.1", "203.0.113.7")
        # the same real client forges another first line: still its own bucket
        second = await _login(client, "198.51.100.2", "203.0.113.7")
    assert first.status_code == 200
    assert second.status_code == 429
    seen = upstream_logs["user-service"].requests[0]
    assert ["x-forwarded-for", "203.0.113.7"] in seen["headers"]


async def test_ipv6_clients_of_one_64_share_a_bucket(make_app):
    async with app_client(make_app(rate_limit_login="1/60", trusted_proxies=PROXY)) as client:
        first = await _login(client, "2001:db8:1:2::1")
        same_64 = await _login(client, "2001:db8:1:2:ffff:1:2:3")
        other_64 = await _login(client, "2001:db8:1:3::1")
    assert [first.status_code, same_64.status_code, other_64.status_code] == [200, 429, 200]


async def test_the_ipv6_bucket_prefix_is_configurable(make_app):
    app = make_app(rate_limit_login="1/60", trusted_proxies=PROXY, client_ipv6_prefix=48)
    async with app_client(app) as client:
        first = await _login(client, "2001:db8:1:2::1")
        same_48 = await _login(client, "2001:db8:1:3::1")
    assert [first.status_code, same_48.status_code] == [200, 429]


async def test_upstreams_still_see_the_full_client_address(make_app, upstream_logs):
    async with app_client(make_app(trusted_proxies=PROXY)) as client:
        await _login(client, "2001:db8:1:2::1")
    seen = upstream_logs["user-service"].requests[0]
    assert ["x-forwarded-for", "2001:db8:1:2::1"] in seen["headers"]
