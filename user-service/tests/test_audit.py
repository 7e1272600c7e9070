"""The audit log: admin query with filters and pagination, own entries, internal append."""

import pytest
from sqlalchemy import func, select

from fedimpute_shared.db import utcnow
from user_service.models import AuditEvent

from .conftest import bearer, login, register, service_auth


async def test_admin_pages_newest_first_with_filters(client, admin_auth, user_tokens):
    for _ in range(3):
        await client.post("/auth/login", json={"login": "ada", "password": "wrong-password-0"})
    first = (await client.get("/users/audit-log?action=auth.*&limit=2", headers=admin_auth)).json()
    assert len(first["items"]) == 2
    second = (
        await client.get(
            f"/users/audit-log?action=auth.*&limit=2&cursor={first['next_cursor']}",
            headers=admin_auth,
        )
    ).json()
    items = first["items"] + second["items"]
    times = [i["occurred_at"] for i in items]
    assert times == sorted(times, reverse=True)
    assert len({i["id"] for i in items}) == len(items)
    assert {i["action"] for i in items} == {"auth.login"}
    failures = (await client.get("/users/audit-log?outcome=failure", headers=admin_auth)).json()[
        "items"
    ]
    assert len(failures) == 3
    assert all(f["target_id"] == user_tokens["user_id"] for f in failures)
    mine = (
        await client.get(f"/users/audit-log?user_id={user_tokens['user_id']}", headers=admin_auth)
    ).json()["items"]
    assert {i["action"] for i in mine} >= {"account.registered", "auth.login"}


async def test_tampered_cursor_is_400(client, admin_auth):
    response = await client.get("/users/audit-log?cursor=abc.def", headers=admin_auth)
    assert response.status_code == 400


async def test_users_see_only_their_own_entries(client, user_auth, user_tokens):
    await register(client, username="bob", email="bob@example.org")
    await login(client, "bob")
    entries = (await client.get("/users/me/audit-log", headers=user_auth)).json()["items"]
    assert entries
    uid = user_tokens["user_id"]
    assert all(uid in (e["actor_id"], e["target_id"]) for e in entries)


async def test_services_append_entries_under_their_own_name(client, admin_auth, db):
    auth = await service_auth(client, "job-processor")
    body = {
        "action": "job.cancelled",
        "actor_type": "user",
        "actor_id": "b1c4f0e2-0000-4000-8000-000000000000",
        "target_type": "job",
        "target_id": "job-42",
        "ip": "203.0.113.5",
        "request_id": "abc123abc123",
        "details": {"reason": "<b>user asked</b>", "nested": {"sql": "'; DROP TABLE x;--"}},
    }
    response = await client.post("/internal/audit-events", json=body, headers=auth)
    assert response.status_code == 201
    stored = await db.get(AuditEvent, response.json()["id"])
    assert stored.source_service == "job-processor"
    assert stored.details == body["details"]
    listed = (
        await client.get("/users/audit-log?source_service=job-processor", headers=admin_auth)
    ).json()["items"]
    assert listed[0]["details"]["nested"]["sql"] == "'; DROP TABLE x;--"


async def test_an_append_cannot_be_backdated_or_pass_for_our_own(client, db, user_tokens):
    """Issue 10 item 20: any service may append, with any actor, but the entry says which
    service wrote it and when user-service received it, and cannot use our action names."""
    auth = await service_auth(client, "file-manager")
    victim = user_tokens["user_id"]
    body = {
        "action": "file.downloaded",
        "actor_type": "user",
        "actor_id": victim,
        "occurred_at": "2020-01-01T00:00:00+00:00",
    }
    response = await client.post("/internal/audit-events", json=body, headers=auth)
    assert response.status_code == 201
    stored = await db.get(AuditEvent, response.json()["id"])
    assert stored.source_service == "file-manager"
    assert abs((stored.occurred_at - utcnow()).total_seconds()) < 60
    assert stored.details["reported_at"] == "2020-01-01T00:00:00+00:00"
    forged = await client.post(
        "/internal/audit-events",
        json={"action": "auth.login", "actor_type": "user", "actor_id": victim},
        headers=auth,
    )
    assert forged.status_code == 422
    mine = await client.get("/users/me/audit-log", headers=bearer(user_tokens["access_token"]))
    entries = mine.json()["items"]
    assert entries[0]["source_service"] == "file-manager"
    assert all(
        e["source_service"] == "user-service" for e in entries if e["action"] == "auth.login"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"action": "Bad Action!", "actor_type": "system"},
        {"action": "x.y", "actor_type": "martian"},
        {"action": "x.y", "actor_type": "system", "details": {"k": "nul\x00"}},
        {"action": "x.y", "actor_type": "system", "details": {"blob": "x" * 9000}},
        {"action": "x.y", "actor_type": "system", "occurred_at": "2026-01-01T00:00:00"},
        {"action": "x.y", "actor_type": "system", "source_service": "forged"},
    ],
    ids=["action", "actor-type", "nul", "too-big", "naive-time", "forged-source"],
)
async def test_bad_appends_are_422(client, db, body):
    auth = await service_auth(client, "file-manager")
    response = await client.post("/internal/audit-events", json=body, headers=auth)
    assert response.status_code == 422
    count = await db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.actor_type == "system")
    )
    assert count == 0


async def test_append_needs_a_service_token(client, db):
    response = await client.post(
        "/internal/audit-events", json={"action": "x.y", "actor_type": "system"}
    )
    assert response.status_code == 401
    assert (await client.get("/users/me/audit-log", headers=bearer("nope"))).status_code == 401


@pytest.mark.parametrize(
    ("query", "status", "count"),
    [
        ("since=2000-01-01T00:00:00", 200, 3),
        ("until=2000-01-01T00:00:00%2B02:00", 200, 0),
        ("action=%25", 200, 0),  # a literal '%', not a wildcard
        ("action=auth.%25", 200, 0),
        ("actor_id=%00", 422, None),
    ],
    ids=["naive-since", "offset-until", "percent", "percent-prefix", "nul"],
)
async def test_odd_filters_answer_cleanly(client, admin_auth, query, status, count):
    response = await client.get(f"/users/audit-log?{query}", headers=admin_auth)
    assert response.status_code == status
    if count is not None:
        assert (
            len(response.json()["items"]) == count
        )  # the admin: registered, made admin, logged in
