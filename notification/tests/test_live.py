"""The live WebSocket on a real uvicorn server: tickets, tokens and first-message auth (and
their forgeries), live pushes, resuming from the last id, heartbeats and expiry, a client that
never reads, and fan-out across two replicas through Redis pub/sub."""

import asyncio
import contextlib
import json
import re
import socket
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fedimpute_shared.testing.tokens import bearer
from notification_service.live.broker import Push

from .conftest import drain, serve
from .factories import file_validated, job_status


@contextlib.asynccontextmanager
async def running(make_app, **overrides):
    """A served app (WebSockets need a real server) and an HTTP client to it."""
    app = make_app(**overrides)
    async with serve(app) as ws_base:
        http_base = ws_base.replace("ws://", "http://")
        async with httpx.AsyncClient(base_url=http_base) as client:
            await app.state.consumer.ensure_group("0")
            app.state.http = client
            app.state.ws_base = ws_base
            yield app


@pytest.fixture
async def live(make_app, db, users, redis):
    async with running(make_app, ws_auth_timeout_seconds=1) as app:
        yield app


async def ticket_for(app, token_issuer, user_id):
    response = await app.state.http.post(
        "/notifications/ws/tickets", headers=bearer(token_issuer.access_token(user_id))
    )
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


async def receive(ws, kind, timeout=5):
    """The next message of type ``kind`` (heartbeats and others skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def test_ticket_opens_the_socket_and_job_status_arrives_live(
    live, token_issuer, users, publish
):
    owner = users.add()
    ticket = await ticket_for(live, token_issuer, owner)
    async with connect(f"{live.state.ws_base}/notifications/ws?ticket={ticket}") as ws:
        ready = await receive(ws, "ready")
        assert ready["user_id"] == str(owner)
        event = job_status(owner, "running", previous_status="queued")
        await publish(event)
        await drain(live)
        message = await receive(ws, "job_status")
    assert message["status"] == "running"
    assert message["job_id"] == str(event.job_id)
    assert message["id"].count("-") == 1  # a stream id: the client's resume point


async def test_a_ticket_is_single_use_and_a_forged_one_is_refused(live, token_issuer, users):
    ticket = await ticket_for(live, token_issuer, users.add())
    async with connect(f"{live.state.ws_base}/notifications/ws?ticket={ticket}") as ws:
        await receive(ws, "ready")
    for used in (ticket, "forged-" + ticket[7:], ""):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{live.state.ws_base}/notifications/ws?ticket={used}"):
                pass
        assert refused.value.response.status_code == 401
        body = json.loads(refused.value.response.body)
        assert body["status"] == 401


async def test_an_expired_ticket_is_refused(live, token_issuer, users, clock):
    ticket = await ticket_for(live, token_issuer, users.add())
    await clock.advance(31)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live.state.ws_base}/notifications/ws?ticket={ticket}"):
            pass
    assert refused.value.response.status_code == 401
    assert "expired" in json.loads(refused.value.response.body)["detail"]


async def test_bearer_header_and_first_message_auth(live, token_issuer, users):
    owner = users.add()
    token = token_issuer.access_token(owner)
    async with connect(
        f"{live.state.ws_base}/notifications/ws", additional_headers=bearer(token)
    ) as ws:
        assert (await receive(ws, "ready"))["user_id"] == str(owner)
    async with connect(f"{live.state.ws_base}/notifications/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert (await receive(ws, "ready"))["user_id"] == str(owner)
        await ws.send(json.dumps({"type": "ping"}))
        await receive(ws, "pong")
        await ws.send("not json")
        assert "ping" in (await receive(ws, "error"))["detail"]


@pytest.mark.parametrize("first", [None, {"type": "auth", "token": "forged"}, {"type": "hello"}])
async def test_no_valid_credentials_in_time_closes_4401(live, token_issuer, first):
    forged = token_issuer.hs256_with_public_key()
    async with connect(f"{live.state.ws_base}/notifications/ws") as ws:
        if first is not None:
            await ws.send(json.dumps(first | ({"token": forged} if "token" in first else {})))
        with pytest.raises(ConnectionClosed):
            await receive(ws, "ready")
    assert ws.close_code == 4401


async def test_a_forged_bearer_token_is_refused_before_the_upgrade(live, token_issuer):
    for token in (token_issuer.hs256_with_public_key(), token_issuer.unsigned_token()):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{live.state.ws_base}/notifications/ws", additional_headers=bearer(token)
            ):
                pass
        assert refused.value.response.status_code == 401


async def test_reconnecting_with_the_last_id_gets_what_was_missed(
    live, token_issuer, users, publish
):
    owner = users.add()
    url = f"{live.state.ws_base}/notifications/ws"
    headers = bearer(token_issuer.access_token(owner))
    async with connect(url, additional_headers=headers) as ws:
        await receive(ws, "ready")
        await publish(file_validated(owner, filename="one.vcf.gz"))
        await drain(live)
        first = await receive(ws, "notification")
    for name in ("two.vcf.gz", "three.vcf.gz"):
        await publish(file_validated(owner, filename=name))
    await drain(live)
    async with connect(f"{url}?last_id={first['id']}", additional_headers=headers) as ws:
        await receive(ws, "ready")
        missed = [await receive(ws, "notification") for _ in range(2)]
    titles = [m["notification"]["title"] for m in missed]
    assert titles == ["two.vcf.gz: ready for imputation", "three.vcf.gz: ready for imputation"]
    assert first["notification"]["title"].startswith("one.vcf.gz")


async def test_heartbeats_and_expired_credentials(make_app, db, users, redis, token_issuer, clock):
    async with running(make_app, ws_heartbeat_seconds=5) as app:
        owner = users.add()
        token = token_issuer.access_token(owner, expires_in=60)
        async with connect(
            f"{app.state.ws_base}/notifications/ws", additional_headers=bearer(token)
        ) as ws:
            await receive(ws, "ready")
            await clock.advance(5)
            await receive(ws, "heartbeat")
            await clock.advance(120)  # the token expired meanwhile
            with pytest.raises(ConnectionClosed):
                await receive(ws, "never")
        assert ws.close_code == 4401


def silent_client(port: int, ticket: str) -> socket.socket:
    """A client that completes the handshake and then never reads a byte."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        (
            f"GET /notifications/ws?ticket={ticket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


async def test_a_client_that_never_reads_is_dropped_without_blocking_others(
    make_app, db, users, redis, token_issuer
):
    async with running(make_app, ws_send_queue_size=8, ws_send_timeout_seconds=1) as app:
        owner = users.add()
        port = int(app.state.ws_base.rsplit(":", 1)[1])
        stuck = silent_client(port, await ticket_for(app, token_issuer, owner))
        try:
            async with connect(
                f"{app.state.ws_base}/notifications/ws",
                additional_headers=bearer(token_issuer.access_token(owner)),
                max_size=None,
            ) as ws:
                await receive(ws, "ready")
                while app.state.hub.connections < 2:
                    await asyncio.sleep(0.01)
                broker = app.state.broker
                big = "x" * 200_000
                got = 0
                for i in range(40):
                    await broker.publish(Push(owner, {"type": "bulk", "i": i, "pad": big}))
                    got += (await receive(ws, "bulk"))["i"] == i  # the reader keeps up
                assert got == 40
                async with asyncio.timeout(10):
                    while app.state.hub.connections > 1:
                        await asyncio.sleep(0.05)
        finally:
            stuck.close()
        metrics = (await app.state.http.get("/metrics")).text
        dropped = re.search(r"^notification_websocket_dropped_total (\S+)$", metrics, re.M)
        assert dropped is not None, metrics
        assert float(dropped.group(1)) == 1


async def test_fan_out_across_replicas(make_app, db, users, redis, token_issuer, publish):
    owner = users.add()
    async with (
        running(make_app) as replica_a,
        running(make_app) as replica_b,
        connect(
            f"{replica_a.state.ws_base}/notifications/ws",
            additional_headers=bearer(token_issuer.access_token(owner)),
        ) as ws,
    ):
        await receive(ws, "ready")
        await publish(job_status(owner, "queued"))
        await drain(replica_b)  # replica B consumed the event; A's client hears it
        assert (await receive(ws, "job_status"))["status"] == "queued"


async def test_ticket_needs_a_token(live):
    response = await live.state.http.post("/notifications/ws/tickets")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_only_quiet_connections_get_heartbeats(clock):
    from datetime import timedelta

    from prometheus_client import CollectorRegistry

    from notification_service.live.hub import Connection, Hub
    from notification_service.metrics import NotificationMetrics

    hub = Hub(NotificationMetrics(CollectorRegistry()), send_timeout=1, heartbeat_seconds=10)
    later = clock.now() + timedelta(hours=1)
    quiet, busy = (Connection(None, uuid.uuid4(), later, 8) for _ in range(2))
    hub.add(quiet)
    hub.add(busy)
    await clock.advance(10)
    busy.offer('{"type":"job_status"}', "5-0")
    await hub.heartbeat()
    assert '"heartbeat"' in quiet.queue.get_nowait()
    assert busy.queue.get_nowait() == '{"type":"job_status"}'
    assert busy.queue.empty()
