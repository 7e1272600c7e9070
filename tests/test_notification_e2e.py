"""Issue 13 (notification), end to end through the gateway of a real fleet: a user's WebSocket
(opened with a ticket, no token in the URL) receives job status changes live; a completed job
sends exactly one email, received by the fleet's real SMTP server; a forgotten password is
reset from the emailed link and the new password logs in.

The job events are added to the fleet's event stream the way job-processor's outbox relay
writes them (job-processor is not on main yet; its models are fedimpute_shared.events')."""

import asyncio
import json
import mailbox
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy

import httpx
import pytest
from redis import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from fedimpute_shared.events import (
    Event,
    JobCompleted,
    JobStatusChanged,
    UserPasswordResetRequested,
)
from fedimpute_shared.outbox import event_fields
from fedimpute_shared.testing.tokens import bearer

pytestmark = pytest.mark.fleet
PASSWORD = "Correct-Horse-Battery-Staple-42"


@pytest.fixture(scope="module")
def api(fleet):
    with httpx.Client(base_url=fleet.gateway, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stream(fleet):
    client = Redis.from_url(fleet.redis_url)
    yield client
    client.close()


def new_user(api):
    name = f"nt{secrets.token_hex(3)}"
    # Its own client address: the login rate limit (per address) is the other tests' too.
    client = {"X-Forwarded-For": f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250)}"}
    registered = api.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        headers=client,
    )
    assert registered.status_code == 201, registered.text
    login = api.post("/api/auth/login", json={"login": name, "password": PASSWORD}, headers=client)
    assert login.status_code == 200, login.text
    return {
        "name": name,
        "id": uuid.UUID(registered.json()["id"]),
        "client": client,
        **login.json(),
    }


def publish(stream, event: Event) -> None:
    """An entry as an outbox relay writes it (docs/architecture.md, "The event stream")."""
    stream.xadd("fedimpute:events", event_fields(event))


def job(owner: uuid.UUID, job_id: uuid.UUID) -> dict:
    return {
        "producer": "job-processor",
        "job_id": job_id,
        "owner_id": owner,
        "job_name": "chr20 H3Africa",
        "service_id": uuid.uuid4(),
        "service_slug": "sandbox-michigan",
    }


def mails_to(
    fleet, address: str, *, expect: int, within: float = 60, about: str | None = None
) -> list:
    """The messages the fleet's SMTP sink received for ``address`` whose subject contains
    ``about`` (every new account also gets its verification email), waiting for ``expect``."""
    deadline = time.monotonic() + within
    while True:
        found = [
            message
            for raw in mailbox.Maildir(fleet.mail_dir, create=False)
            if (message := message_from_bytes(bytes(raw), policy=policy.default))["To"] == address
            and (about is None or about in message["Subject"])
        ]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


async def receive(ws, kind, timeout=30):
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


def ws_url(fleet, path: str) -> str:
    return fleet.gateway.replace("http://", "ws://") + path


async def test_job_status_changes_arrive_over_the_websocket_through_the_gateway(fleet, api, stream):
    user = new_user(api)
    ticket = api.post("/api/notifications/ws/tickets", headers=bearer(user["access_token"]))
    assert ticket.status_code == 201, ticket.text
    url = ws_url(fleet, f"/api/notifications/ws?ticket={ticket.json()['ticket']}")
    async with connect(url) as ws:
        assert (await receive(ws, "ready"))["user_id"] == str(user["id"])
        job_id = uuid.uuid4()
        seen = []
        for previous, status in (
            (None, "submitting"),
            ("submitting", "queued"),
            ("queued", "running"),
        ):
            publish(
                stream,
                JobStatusChanged(
                    **job(user["id"], job_id), previous_status=previous, status=status
                ),
            )
            message = await receive(ws, "job_status")
            seen.append(message["status"])
            assert message["job_id"] == str(job_id)
    assert seen == ["submitting", "queued", "running"]


async def test_a_token_in_the_websocket_url_is_refused(fleet, api):
    user = new_user(api)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(fleet, f"/api/notifications/ws?access_token={user['access_token']}")
        ):
            pass
    assert refused.value.response.status_code == 400


def test_a_completed_job_sends_exactly_one_email(fleet, api, stream):
    user = new_user(api)
    address = f"{user['name']}@example.org"
    completed = JobCompleted(
        **job(user["id"], uuid.uuid4()),
        result_file_ids=[uuid.uuid4()],
        finished_at=datetime.now(UTC),
    )
    publish(stream, completed)
    publish(stream, completed)  # delivered twice (a relay retry): still one email
    [message] = mails_to(fleet, address, expect=1, about="completed")
    assert message["Subject"] == "[FedImpute] Job “chr20 H3Africa” completed"
    time.sleep(3)  # a second email would have arrived by now
    assert len(mails_to(fleet, address, expect=2, within=0, about="completed")) == 1
    listed = api.get("/api/notifications", headers=bearer(user["access_token"])).json()["items"]
    assert [n["event_type"] for n in listed] == ["job.completed"]


@pytest.mark.skipif(
    "sealed_token" not in UserPasswordResetRequested.model_fields,
    reason="user-service seals reset tokens (the delivery contract) from issue 10 on",
)
def test_a_forgotten_password_is_reset_from_the_emailed_link(fleet, api):
    user = new_user(api)
    address = f"{user['name']}@example.org"
    requested = api.post(
        "/api/auth/password-reset", json={"email": address}, headers=user["client"]
    )
    assert requested.status_code == 202
    [message] = mails_to(fleet, address, expect=1, about="Reset your password")
    text = message.get_body(preferencelist=("plain",)).get_content()
    token = re.search(r"/reset-password\?token=(\S+)", text).group(1)
    new_password = "Another-Horse-Battery-Staple-43"
    confirmed = api.post(
        "/api/auth/password-reset/confirm",
        json={"token": token, "new_password": new_password},
        headers=user["client"],
    )
    assert confirmed.status_code in (200, 204), confirmed.text
    login = api.post(
        "/api/auth/login",
        json={"login": user["name"], "password": new_password},
        headers=user["client"],
    )
    assert login.status_code == 200
    old = api.post(
        "/api/auth/login",
        json={"login": user["name"], "password": PASSWORD},
        headers=user["client"],
    )
    assert old.status_code == 401
