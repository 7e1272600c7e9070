"""Password reset by emailed one-time token (outbox event), with no account enumeration."""

from datetime import timedelta

from sqlalchemy import func, select, update

from fedimpute_shared.db import utcnow
from fedimpute_shared.sealed import open_sealed
from user_service.models import OneTimeToken, OutboxEvent

from .conftest import DELIVERY_PRIVATE, PASSWORD, emailed_token, login, register

NEW_PASSWORD = "Cobalt-meadow-whispers-58"
RESET = "user.password_reset_requested"


async def _reset_events(db):
    rows = await db.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.event_type == "user.password_reset_requested")
        .order_by(OutboxEvent.created_at)
    )
    return rows.all()


async def test_same_answer_for_known_and_unknown_addresses(client, db):
    await register(client)
    known = await client.post("/auth/password-reset", json={"email": "ADA@example.org"})
    unknown = await client.post("/auth/password-reset", json={"email": "ghost@example.org"})
    garbage = await client.post("/auth/password-reset", json={"email": "not an address"})
    assert known.status_code == unknown.status_code == garbage.status_code == 202
    assert known.json() == unknown.json() == garbage.json()
    (event,) = await _reset_events(db)
    assert event.payload["email"] == "ada@example.org"
    assert event.payload["username"] == "ada"
    assert event.payload["producer"] == "user-service"
    assert event.payload["version"] == 2


async def test_reset_sets_the_password_and_ends_every_session(client, db):
    await register(client)
    session = await login(client)
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    token = await emailed_token(db, RESET)
    stored = (await db.scalars(select(OneTimeToken.token_hash))).all()
    assert token not in stored
    response = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204
    refresh = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401
    old = await client.post("/auth/login", json={"login": "ada", "password": PASSWORD})
    assert old.status_code == 401
    await login(client, "ada", NEW_PASSWORD)
    again = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD + "x"}
    )
    assert again.status_code == 400


async def test_reset_lifts_a_lockout(client, db):
    await register(client)
    for _ in range(5):
        await client.post("/auth/login", json={"login": "ada", "password": "wrong-password-0"})
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    token = await emailed_token(db, RESET)
    await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    await login(client, "ada", NEW_PASSWORD)


async def test_a_newer_request_voids_the_older_token(client, db):
    await register(client)
    for _ in range(2):
        await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    first, second = (
        open_sealed(DELIVERY_PRIVATE, e.payload["sealed_token"]) for e in await _reset_events(db)
    )
    stale = await client.post(
        "/auth/password-reset/confirm", json={"token": first, "new_password": NEW_PASSWORD}
    )
    assert stale.status_code == 400
    fresh = await client.post(
        "/auth/password-reset/confirm", json={"token": second, "new_password": NEW_PASSWORD}
    )
    assert fresh.status_code == 204


async def test_expired_token_and_weak_password_are_refused(client, db):
    await register(client)
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    token = await emailed_token(db, RESET)
    weak = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": "ada12345678"}
    )
    assert weak.status_code == 422
    await db.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    await db.commit()
    expired = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert expired.status_code == 400
    await login(client)  # the old password still works


async def test_deactivated_accounts_get_no_reset_mail(client, db, admin_auth):
    user = await register(client)
    await client.post(f"/users/{user['id']}/deactivate", headers=admin_auth)
    response = await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    assert response.status_code == 202
    assert (
        await db.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.event_type == "user.password_reset_requested")
        )
        == 0
    )
