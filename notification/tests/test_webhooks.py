"""Webhooks against a real local HTTP receiver: URLs checked like the registry's, signed bodies
(generic and Slack), retries with back-off after a 500 or a hang, final failures, the
delivery log, secret rotation."""

import asyncio
import contextlib
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field

import pytest

from fedimpute_shared.embedded import free_port

from .conftest import drain, started
from .factories import job_completed


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server: records each request, answers ``status`` (or hangs)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    hang: bool = False
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        body = await reader.readexactly(int(headers.get("content-length", 0)))
        self.requests.append({"line": lines[0], "headers": headers, "body": body})
        if self.hang:
            await asyncio.sleep(30)
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver():
    hook = Receiver()
    server = await asyncio.start_server(hook.handle, "127.0.0.1", hook.port)
    yield hook
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 1)


@pytest.fixture
async def hooked(make_app, db, users, redis):
    async with started(
        make_app, allow_private_urls=True, webhook_timeout_seconds=1, webhook_max_attempts=3
    ) as app:
        yield app


async def add_webhook(app, headers, url, **body):
    response = await app.state.test_client.post(
        "/notifications/webhooks", json={"url": url, **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def verify(secret: str, request: dict) -> bool:
    stamp, mac = (
        part.split("=", 1)[1] for part in request["headers"]["x-fedimpute-signature"].split(",")
    )
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + request["body"], hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), mac)


async def deliver(app):
    return await app.state.webhook_sender.send_due()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.0.0.8/hook", "private"),
        ("http://169.254.169.254/latest", "metadata"),
        ("https://user:pw@hooks.example.org/x", "credentials"),
        ("ftp://hooks.example.org/x", "http"),
        ("http://localhost/x", "local"),
    ],
)
async def test_unsafe_urls_are_refused(client, user_token, db, url, why):
    headers = user_token(uuid.uuid4())
    response = await client.post("/notifications/webhooks", json={"url": url}, headers=headers)
    assert response.status_code == 422
    assert why in response.json()["detail"]
    assert (await client.get("/notifications/webhooks", headers=headers)).json()["items"] == []


async def test_signed_delivery_with_public_fields_only(
    hooked, users, user_token, publish, receiver
):
    owner = users.add()
    created = await add_webhook(hooked, user_token(owner), receiver.url)
    event = job_completed(owner)
    await publish(event)
    await drain(hooked)
    assert await deliver(hooked) == 1

    [request] = receiver.requests
    assert request["line"] == "POST /hook HTTP/1.1"
    assert request["headers"]["x-fedimpute-event"] == "job.completed"
    assert verify(created["secret"], request)
    body = json.loads(request["body"])
    assert body["event_id"] == str(event.event_id)
    assert body["summary"].startswith("Job “chr20 imputation” on sandbox-michigan completed")
    assert body["data"]["job_id"] == str(event.job_id)
    log = await hooked.state.test_client.get(
        f"/notifications/webhooks/{created['id']}/deliveries", headers=user_token(owner)
    )
    [entry] = log.json()["items"]
    assert entry["status"] == "sent"
    assert entry["last_status_code"] == 200


async def test_slack_payload(hooked, users, user_token, publish, receiver):
    owner = users.add()
    await add_webhook(hooked, user_token(owner), receiver.url, format="slack")
    await publish(job_completed(owner, job_name="a <b> & c"))
    await drain(hooked)
    await deliver(hooked)
    body = json.loads(receiver.requests[0]["body"])
    assert set(body) == {"text", "blocks"}
    assert "a &lt;b&gt; &amp; c" in body["text"]
    assert "https://imputation.example.org/jobs/" in body["text"]


async def test_a_500_is_retried_with_backoff_then_delivered(
    hooked, users, user_token, publish, receiver, clock
):
    owner = users.add()
    created = await add_webhook(hooked, user_token(owner), receiver.url)
    receiver.status = 500
    await publish(job_completed(owner))
    await drain(hooked)
    await deliver(hooked)
    assert await deliver(hooked) == 0  # backing off
    receiver.status = 204
    await clock.advance(120)
    assert await deliver(hooked) == 1
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    log = await hooked.state.test_client.get(
        f"/notifications/webhooks/{created['id']}/deliveries", headers=user_token(owner)
    )
    [entry] = log.json()["items"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("sent", 2, 204)


async def test_a_hanging_receiver_times_out_and_a_404_fails_for_good(
    hooked, users, user_token, publish, receiver, clock
):
    owner = users.add()
    created = await add_webhook(hooked, user_token(owner), receiver.url)
    receiver.hang = True
    await publish(job_completed(owner))
    await drain(hooked)
    await asyncio.wait_for(deliver(hooked), 5)  # the hang does not hold the sender
    receiver.hang, receiver.status = False, 404
    await clock.advance(120)
    await deliver(hooked)
    log = await hooked.state.test_client.get(
        f"/notifications/webhooks/{created['id']}/deliveries", headers=user_token(owner)
    )
    [entry] = log.json()["items"]
    assert entry["status"] == "failed"
    assert entry["attempts"] == 2
    assert entry["last_status_code"] == 404


async def test_endpoints_are_their_owners_and_secrets_rotate(hooked, users, user_token, receiver):
    owner, stranger = users.add(), users.add("eve")
    created = await add_webhook(hooked, user_token(owner), receiver.url)
    client = hooked.state.test_client
    path = f"/notifications/webhooks/{created['id']}"
    assert (await client.get(path, headers=user_token(stranger))).status_code == 404
    assert (await client.delete(path, headers=user_token(stranger))).status_code == 404
    assert "secret" not in (await client.get(path, headers=user_token(owner))).json()
    rotated = await client.post(f"{path}/rotate-secret", headers=user_token(owner))
    assert rotated.json()["secret"] != created["secret"]
    assert (await client.delete(path, headers=user_token(owner))).status_code == 204
    assert (await client.get(path, headers=user_token(owner))).status_code == 404


async def test_endpoint_count_is_limited(make_app, db, users, redis, user_token):
    async with started(make_app, webhook_max_endpoints_per_user=1) as app:
        headers = user_token(uuid.uuid4())
        client = app.state.test_client
        first = await client.post(
            "/notifications/webhooks", json={"url": "https://a.example.org/h"}, headers=headers
        )
        assert first.status_code == 201
        second = await client.post(
            "/notifications/webhooks", json={"url": "https://b.example.org/h"}, headers=headers
        )
        assert second.status_code == 409
