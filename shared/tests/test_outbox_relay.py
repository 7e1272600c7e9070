"""The outbox relay against a real Postgres and a real Redis: order, at-least-once, the stream
format, a bounded stream, pruning, Redis going away and coming back, and the app wiring."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from fedimpute_shared.app import create_service_app
from fedimpute_shared.config import validated_copy
from fedimpute_shared.embedded import embedded_redis, free_port
from fedimpute_shared.events import (
    ServiceDeactivated,
    UserPasswordResetRequestedV1,
    add_to_outbox,
)
from fedimpute_shared.outbox import OutboxRelay, RelayOptions
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import truncate_all
from fedimpute_shared.testing.tokens import bearer

from .conftest import MIGRATIONS, Outbox, router


@pytest.fixture
async def maker(demo_db_url):
    engine = create_async_engine(demo_db_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await truncate_all(engine)
    await engine.dispose()


@pytest.fixture
def stream():
    return f"test:events:{secrets.token_hex(4)}"


@pytest.fixture
async def redis(redis_url, stream):
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.delete(stream)
    await client.aclose()


def relay_for(maker, redis, stream, **options):
    values = {"stream": stream, "max_length": 1000, "batch_size": 3, "retention": timedelta(days=3)}
    return OutboxRelay(maker, redis, Outbox, RelayOptions(**(values | options)))


def event(n: int) -> ServiceDeactivated:
    return ServiceDeactivated(
        producer="demo", service_id=uuid.uuid4(), service_slug=f"s{n}", reason=f"r{n}"
    )


async def write_events(maker, events):
    async with maker() as session:
        for item in events:
            await add_to_outbox(session, Outbox, item)
        await session.commit()


async def entries(redis, stream):
    return [fields for _, fields in await redis.xrange(stream)]


async def test_rows_are_published_in_order_with_readable_fields_and_marked(maker, redis, stream):
    events = [event(n) for n in range(7)]
    # One transaction with several events, then one more: order is insertion order.
    await write_events(maker, events[:6])
    await write_events(maker, events[6:])
    relay = relay_for(maker, redis, stream)

    assert await relay.relay_once() == 7
    published = await entries(redis, stream)
    assert [e["event_id"] for e in published] == [str(e.event_id) for e in events]
    first = published[0]
    assert set(first) == {"event_id", "event_type", "version", "producer", "occurred_at", "payload"}
    assert first["event_type"] == "service.deactivated"
    assert first["version"] == "1"
    assert first["producer"] == "demo"
    payload = json.loads(first["payload"])
    assert payload["service_slug"] == "s0"
    assert payload["event_id"] == first["event_id"]
    assert payload["occurred_at"] == first["occurred_at"]
    assert await relay.pending() == 0
    # Nothing new: nothing sent again.
    assert await relay.relay_once() == 0
    assert len(await entries(redis, stream)) == 7


async def test_order_holds_with_a_frozen_clock(maker, redis, stream, clock):
    events = [event(n) for n in range(5)]
    await write_events(maker, events)  # every created_at is the same instant
    await relay_for(maker, redis, stream).relay_once()
    assert [e["event_id"] for e in await entries(redis, stream)] == [
        str(e.event_id) for e in events
    ]


async def test_a_failed_mark_means_sent_again_never_lost(maker, redis, stream):
    await write_events(maker, [event(1), event(2)])
    relay = relay_for(maker, redis, stream)
    await relay.relay_once()
    # As if the process died after XADD but before its commit: the rows are pending again.
    async with maker() as session:
        await session.execute(update(Outbox).values(published_at=None))
        await session.commit()
    await relay.relay_once()
    ids = [e["event_id"] for e in await entries(redis, stream)]
    assert len(ids) == 4  # at least once ...
    assert len(set(ids)) == 2  # ... and consumers dedupe on event_id


async def test_the_stream_stays_bounded(maker, redis, stream):
    await write_events(maker, [event(n) for n in range(400)])
    relay = relay_for(maker, redis, stream, max_length=100, batch_size=50)
    assert await relay.relay_once() == 400
    length = await redis.xlen(stream)
    # MAXLEN ~ trims whole macro-nodes: about the bound, never all 400.
    assert 100 <= length < 400
    newest = (await redis.xrevrange(stream, count=1))[0][1]
    assert json.loads(newest["payload"])["service_slug"] == "s399"


async def test_old_published_rows_are_pruned(maker, redis, stream):
    await write_events(maker, [event(1), event(2)])
    await write_events(maker, [event(3)])
    relay = relay_for(maker, redis, stream, retention=timedelta(hours=1))
    await relay.relay_once()
    async with maker() as session:
        first_two = select(Outbox.id).order_by(Outbox.seq).limit(2)
        await session.execute(
            update(Outbox)
            .where(Outbox.id.in_(first_two))
            .values(published_at=func.now() - timedelta(hours=2))
        )
        await session.commit()
    assert await relay.prune() == 2
    async with maker() as session:
        assert await session.scalar(select(func.count()).select_from(Outbox)) == 1


async def test_redis_going_away_and_coming_back(maker, stream, tmp_path, caplog):
    caplog.set_level("INFO", logger="fedimpute_shared.outbox")  # "reachable again" is INFO
    port = free_port()
    server = embedded_redis(tmp_path / "r1", port)
    redis = Redis.from_url(server.url, decode_responses=True, socket_connect_timeout=1)
    relay = relay_for(maker, redis, stream)
    try:
        await write_events(maker, [event(1)])
        assert await relay.relay_once() == 1

        server.stop()
        await write_events(maker, [event(2), event(3)])
        assert await relay.relay_once() == 0  # quietly kept
        assert await relay.relay_once() == 0
        assert await relay.pending() == 2
        assert caplog.text.count("event stream unreachable") == 1  # logged once, not each round

        server = embedded_redis(tmp_path / "r2", port)  # back (empty: it kept nothing)
        await write_events(maker, [event(4)])
        assert await relay.relay_once() == 3
        published = await entries(redis, stream)
        assert [json.loads(e["payload"])["service_slug"] for e in published] == ["s2", "s3", "s4"]
        assert "event stream reachable again" in caplog.text
    finally:
        await redis.aclose()
        server.stop()


async def test_payloads_never_reach_the_logs(maker, stream, tmp_path, caplog):
    caplog.set_level("DEBUG")
    server = embedded_redis(tmp_path / "r", free_port())
    redis = Redis.from_url(server.url, socket_connect_timeout=1)
    secret = UserPasswordResetRequestedV1(
        producer="demo",
        user_id=uuid.uuid4(),
        email="ada@example.org",
        username="ada",
        reset_token="one-time-token-d2f9c0",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    try:
        await write_events(maker, [secret])
        relay = relay_for(maker, redis, stream)
        assert await relay.relay_once() == 1
        server.stop()
        await write_events(maker, [secret.model_copy(update={"event_id": uuid.uuid4()})])
        await relay.relay_once()
    finally:
        await redis.aclose()
        server.stop()
    assert "one-time-token-d2f9c0" not in caplog.text
    assert "ada@example.org" not in caplog.text


async def test_the_app_relays_its_outbox_to_the_stream(
    maker, settings, redis_url, redis, stream, token_issuer
):
    relaying = validated_copy(
        settings, redis_url=redis_url, event_stream=stream, outbox_relay_interval_seconds=0.05
    )
    app = create_service_app(
        relaying,
        title="Demo",
        description="demo",
        routers=[router],
        migrations_dir=MIGRATIONS,
        outbox=Outbox,
    )
    admin = bearer(token_issuer.access_token(roles=["admin"]))
    async with app_client(app) as client:
        created = await client.post("/widgets", json={"name": "relayed"}, headers=admin)
        assert created.status_code == 201
        # The relay counts an event after XADD returned: wait for the count, not the stream.
        async with asyncio.timeout(10):
            while "outbox_events_published_total 1.0" not in (await client.get("/metrics")).text:
                await asyncio.sleep(0.05)
        assert await redis.xlen(stream) == 1
        # Redis is only needed by the relay here: readiness does not depend on it.
        assert set((await client.get("/ready")).json()["checks"]) == {"database"}
    [entry] = await entries(redis, stream)
    assert entry["event_type"] == "service.deactivated"
    assert json.loads(entry["payload"])["service_slug"] == "relayed"


async def test_without_redis_the_app_keeps_events_and_says_so(settings, capsys):
    app = create_service_app(
        settings, title="Demo", description="demo", routers=[router], outbox=Outbox
    )
    async with app_client(app):
        pass
    # (create_service_app routes the logs to stderr)
    assert "outbox events are kept but not published" in capsys.readouterr().err
    assert app.state.outbox_relay is None
