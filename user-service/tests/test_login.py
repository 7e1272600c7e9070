"""Login by username or email, lockout that reveals nothing, address throttling, audit."""

import asyncio

import pytest
from sqlalchemy import select

from fedimpute_shared.testing.client import app_client
from user_service.models import AuditEvent, OutboxEvent

from .conftest import PASSWORD, bearer, emailed_token, login, register


async def _attempt(client, name, password, **headers):
    return await client.post(
        "/auth/login", json={"login": name, "password": password}, headers=headers
    )


@pytest.mark.parametrize("name", ["ada", "ADA", "ada@example.org", " Ada@Example.org "])
async def test_login_by_username_or_email_in_any_case(client, name):
    await register(client)
    tokens = await login(client, name)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"].startswith("fgr_")
    me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.json()["username"] == "ada"
    assert me.json()["last_login_at"] is not None


async def test_login_accepts_username_field_too(client):
    await register(client)
    response = await client.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_answer(client):
    await register(client)
    wrong = await _attempt(client, "ada", "not-the-password-1")
    unknown = await _attempt(client, "nobody", "not-the-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_account_locks_after_five_failures_even_for_the_right_password(client, db):
    await register(client)
    for _ in range(5):
        assert (await _attempt(client, "ada", "wrong-password-00")).status_code == 401
    locked = await _attempt(client, "ada@example.org", PASSWORD)
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 900
    actions = (await db.scalars(select(AuditEvent.action).order_by(AuditEvent.occurred_at))).all()
    assert actions.count("auth.lockout") == 1


async def test_unknown_account_locks_exactly_like_a_real_one(client):
    await register(client)
    real, ghost = [], []
    for name, answers in (("ada", real), ("ghost", ghost)):
        for _ in range(6):
            response = await _attempt(client, name, "wrong-password-00")
            answers.append((response.status_code, response.json()["detail"]))
    assert real == ghost
    assert [status for status, _ in real] == [401] * 5 + [429]


async def test_lock_lifts_after_the_lockout_period(make_app, db, clock):
    async with app_client(make_app(login_lockout_seconds=60)) as c:
        await register(c)
        for _ in range(5):
            await _attempt(c, "ada", "wrong-password-00")
        assert (await _attempt(c, "ada", PASSWORD)).status_code == 429
        await clock.advance(61)
        assert (await _attempt(c, "ada", PASSWORD)).status_code == 200


def _from(address):
    return {"X-Forwarded-For": address}  # the test client is a trusted proxy (loopback)


async def test_an_anonymous_guesser_locks_the_account_for_itself_only(client):
    """Issue 10 item 16: five anonymous bad logins used to lock any account, for everyone."""
    await register(client)
    attacker = _from("203.0.113.66")
    for _ in range(5):
        assert (await _attempt(client, "ada", "wrong-password-00", **attacker)).status_code == 401
    assert (await _attempt(client, "ada", PASSWORD, **attacker)).status_code == 429
    owner = await _attempt(client, "ada", PASSWORD, **_from("198.51.100.20"))
    assert owner.status_code == 200


async def test_the_account_ceiling_locks_for_everyone_and_the_owner_unlocks_by_email(make_app, db):
    async with app_client(make_app(login_account_max_failures=6)) as c:
        await register(c)
        for n in range(3):  # a guess spread over three addresses
            for _ in range(2):
                await _attempt(c, "ada", "wrong-password-00", **_from(f"203.0.113.{n + 1}"))
        elsewhere = _from("198.51.100.20")
        assert (await _attempt(c, "ada", PASSWORD, **elsewhere)).status_code == 429
        event = await db.scalar(
            select(OutboxEvent).where(OutboxEvent.event_type == "user.account_unlock_requested")
        )
        assert event.payload["email"] == "ada@example.org"
        assert event.payload["locked_until"]
        token = await emailed_token(db, "user.account_unlock_requested")
        assert (await c.post("/auth/unlock", json={"token": "nope"})).status_code == 400
        assert (await c.post("/auth/unlock", json={"token": token})).status_code == 204
        assert (await _attempt(c, "ada", PASSWORD, **elsewhere)).status_code == 200
        assert (await c.post("/auth/unlock", json={"token": token})).status_code == 400


async def test_an_unknown_name_locks_like_a_known_one_and_emails_no_one(make_app, db):
    async with app_client(make_app(login_account_max_failures=3)) as c:
        await register(c)
        answers = {}
        for name in ("ada", "ghost"):
            answers[name] = [
                (
                    await _attempt(c, name, "wrong-password-00", **_from(f"203.0.113.{n}"))
                ).status_code
                for n in range(5)
            ]
        assert answers["ada"] == answers["ghost"] == [401, 401, 401, 429, 429]
    events = (await db.scalars(select(OutboxEvent.event_type))).all()
    assert events.count("user.account_unlock_requested") == 1


async def test_success_resets_the_failure_count(client):
    await register(client)
    for _ in range(4):
        await _attempt(client, "ada", "wrong-password-00")
    await login(client)
    for _ in range(4):
        assert (await _attempt(client, "ada", "wrong-password-00")).status_code == 401
    assert (await _attempt(client, "ada", PASSWORD)).status_code == 200


async def test_parallel_guesses_get_no_more_than_the_limit_through(client):
    await register(client)
    answers = await asyncio.gather(
        *(_attempt(client, "ada", f"wrong-password-{i:02}") for i in range(12))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(401) == 5
    assert statuses.count(429) == 7


async def test_one_address_spraying_many_accounts_is_throttled(make_app, db):
    async with app_client(make_app(login_ip_max_failures=3)) as c:
        await register(c)
        for name in ("a1", "a2", "a3"):
            assert (await _attempt(c, name, "wrong-password-00")).status_code == 401
        assert (await _attempt(c, "ada", PASSWORD)).status_code == 429


async def test_deactivated_account_cannot_log_in(client, db, admin_auth):
    user = await register(client)
    await client.post(f"/users/{user['id']}/deactivate", headers=admin_auth)
    response = await _attempt(client, "ada", PASSWORD)
    assert response.status_code == 403
    assert "deactivated" in response.json()["detail"]


async def test_login_outcomes_are_audited_with_address_agent_and_request_id(client, db):
    user = await register(client)
    await _attempt(
        client, "ada", "wrong-password-00", **{"User-Agent": "curl/8", "X-Request-ID": "req-12345"}
    )
    await login(client)
    rows = (
        await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.login")
            .order_by(AuditEvent.occurred_at)
        )
    ).all()
    assert [r.outcome for r in rows] == ["failure", "success"]
    failed = rows[0]
    assert failed.target_id == user["id"]
    assert failed.ip == "127.0.0.1"
    assert failed.user_agent == "curl/8"
    assert failed.request_id == "req-12345"
    assert rows[1].actor_id == user["id"]


async def test_forwarded_address_is_believed_only_from_a_trusted_proxy(make_app, db):
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    async with app_client(make_app()) as c:
        await register(c)
        await _attempt(c, "ada", "wrong-password-00", **headers)
    async with app_client(make_app(trusted_proxies=["10.0.0.0/8"])) as c:
        await _attempt(c, "ada", "wrong-password-00", **headers)
    ips = (
        await db.scalars(
            select(AuditEvent.ip)
            .where(AuditEvent.action == "auth.login")
            .order_by(AuditEvent.occurred_at)
        )
    ).all()
    # Trusted peer (loopback): the last hop it added. Untrusted peer: its own address.
    assert ips == ["198.51.100.7", "127.0.0.1"]


async def test_login_outcomes_are_counted_in_metrics(make_app, db):
    async with app_client(make_app(login_max_failures=2)) as c:
        await register(c)
        await login(c)
        for _ in range(3):
            await _attempt(c, "ada", "wrong-password-00")
        text = (await c.get("/metrics")).text
    assert 'user_service_logins_total{outcome="success"} 1.0' in text
    assert 'user_service_logins_total{outcome="failure"} 2.0' in text
    assert 'user_service_logins_total{outcome="locked"} 1.0' in text
    assert 'user_service_tokens_issued_total{kind="session"} 1.0' in text
