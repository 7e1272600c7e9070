"""Issue 10 item 6 in user-service: the login address throttle counts the same client address
as the gateway (shared ``fedimpute_shared.client_address``): every X-Forwarded-For line, the
right-most untrusted hop, IPv6 by /64 (configurable)."""

from sqlalchemy import select

from fedimpute_shared.testing.client import app_client
from user_service.models import AuditEvent

from .conftest import PASSWORD, register


async def _attempt(client, name, password, *forwarded):
    return await client.post(
        "/auth/login",
        json={"login": name, "password": password},
        headers=[("X-Forwarded-For", value) for value in forwarded],
    )


async def test_ipv6_addresses_of_one_64_share_the_address_throttle(make_app, db):
    async with app_client(make_app(login_ip_max_failures=3)) as c:
        await register(c)
        for n, name in enumerate(("a1", "a2", "a3"), start=1):
            answer = await _attempt(c, name, "wrong-password-00", f"2001:db8:7:7::{n}")
            assert answer.status_code == 401
        same_64 = await _attempt(c, "ada", PASSWORD, "2001:db8:7:7:abcd::99")
        other_64 = await _attempt(c, "ada", PASSWORD, "2001:db8:7:8::1")
    assert same_64.status_code == 429
    assert other_64.status_code == 200


async def test_the_throttle_prefix_is_configurable(make_app, db):
    async with app_client(make_app(login_ip_max_failures=1, client_ipv6_prefix=128)) as c:
        await register(c)
        await _attempt(c, "a1", "wrong-password-00", "2001:db8:7:7::1")
        other_128 = await _attempt(c, "ada", PASSWORD, "2001:db8:7:7::2")
    assert other_128.status_code == 200


async def test_a_forged_first_line_does_not_escape_the_throttle(make_app, db):
    async with app_client(make_app(login_ip_max_failures=2)) as c:
        await register(c)
        for n in (1, 2):
            forged = f"198.51.100.{n}"
            answer = await _attempt(c, f"a{n}", "wrong-password-00", forged, "203.0.113.9")
            assert answer.status_code == 401
        third = await _attempt(c, "ada", PASSWORD, "198.51.100.3", "203.0.113.9")
    assert third.status_code == 429
    ips = set(
        (await db.scalars(select(AuditEvent.ip).where(AuditEvent.action == "auth.login"))).all()
    )
    assert ips == {"203.0.113.9"}  # the audit keeps the full address the proxy saw
