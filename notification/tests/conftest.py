"""notification tests: a real Postgres migrated with the real migrations, a real Redis (the
test's own stream and channel), a real SMTP server (aiosmtpd), and user-service's internal
user endpoints answered by respx."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from secrets import token_hex
from typing import Any

import httpx
import pytest
import respx
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from redis.asyncio import Redis

from fedimpute_shared.embedded import free_port
from fedimpute_shared.events import Event
from fedimpute_shared.outbox import event_fields
from fedimpute_shared.sealed import generate_keypair
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database
from fedimpute_shared.testing.tokens import TokenIssuer, bearer
from notification_service.config import Settings
from notification_service.main import MIGRATIONS_DIR, create_app

USER_SERVICE = "http://user-service.test"
APP_URL = "https://imputation.example.org"
DELIVERY_PRIVATE, DELIVERY_PUBLIC = generate_keypair()


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "notification", MIGRATIONS_DIR) as url:
        yield url


# ---------------------------------------------------------------------------- SMTP


class _Inbox:
    """aiosmtpd handler: keeps every message it accepts; can refuse recipients with 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox
    controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port(), _Inbox())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    smtp_server.inbox.messages.clear()
    smtp_server.inbox.refuse.clear()
    if smtp_server.controller is None:
        smtp_server.start()
    yield smtp_server
    if smtp_server.controller is None:
        smtp_server.start()


# ---------------------------------------------------------------------------- settings, app


@pytest.fixture
def names() -> dict[str, str]:
    """This test's own Redis stream and channel (deleted afterwards)."""
    tag = token_hex(4)
    return {"stream": f"test:events:{tag}", "channel": f"test:push:{tag}"}


@pytest.fixture
async def redis(redis_url: str, names: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{names['channel']}*")]
    await client.delete(names["stream"], *keys)
    await client.aclose()


@pytest.fixture
def settings(
    database_url: str,
    token_issuer: TokenIssuer,
    redis_url: str,
    names: dict[str, str],
    smtp_server: SmtpServer,
) -> Settings:
    return Settings(
        database_url=database_url,
        jwks_url=token_issuer.jwks_url,
        redis_url=redis_url,
        event_stream=names["stream"],
        ws_channel=names["channel"],
        consumer_enabled=False,  # tests drive the consumer and the senders directly
        delivery_workers_enabled=False,
        log_json=False,
        user_service_url=USER_SERVICE,
        public_base_url=APP_URL,
        delivery_private_key=DELIVERY_PRIVATE,  # type: ignore[arg-type]
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_timeout_seconds=5,
        consumer_block_ms=10,
    )


@pytest.fixture
def app_factory() -> Callable[[Settings], FastAPI]:
    return create_app


# ---------------------------------------------------------------------------- user-service


@dataclass
class Users:
    """What user-service answers about users (its internal endpoints, through respx)."""

    contacts: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    admins: list[uuid.UUID] = field(default_factory=list)
    down: bool = False

    def add(self, name: str = "ada", *, admin: bool = False, active: bool = True) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.contacts[user_id] = {
            "id": str(user_id),
            "username": name,
            "email": f"{name}@example.org",
            "is_active": active,
        }
        if admin:
            self.admins.append(user_id)
        return user_id

    def email(self, user_id: uuid.UUID) -> str:
        return str(self.contacts[user_id]["email"])


@pytest.fixture
def users() -> Iterator[Users]:
    known = Users()

    def contact(request: httpx.Request, user_id: str) -> httpx.Response:
        if known.down:
            return httpx.Response(503)
        found = known.contacts.get(uuid.UUID(user_id))
        return httpx.Response(200, json=found) if found else httpx.Response(404)

    def holders(request: httpx.Request) -> httpx.Response:
        if known.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"items": [known.contacts[a] for a in known.admins]})

    with respx.mock(using="httpx", assert_all_called=False) as mock:
        mock.post(f"{USER_SERVICE}/internal/service-tokens").respond(
            json={"access_token": "service-token", "token_type": "Bearer", "expires_in": 600}
        )
        mock.get(url__regex=rf"{USER_SERVICE}/internal/users/(?P<user_id>[^/?]+)$").mock(
            side_effect=contact
        )
        mock.get(url__startswith=f"{USER_SERVICE}/internal/users?").mock(side_effect=holders)
        mock.route().pass_through()
        yield known


# ---------------------------------------------------------------------------- the app


@pytest.fixture
async def app(make_app: Callable[..., FastAPI], db: Any, users: Users, redis: Redis):
    """The app with its lifespan running (``app.state.consumer`` etc. for driving workers)."""
    application = make_app()
    async with app_client(application) as client:
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: FastAPI) -> httpx.AsyncClient:
    return app.state.test_client  # type: ignore[no-any-return]


@pytest.fixture
def user_token(token_issuer: TokenIssuer) -> Callable[..., dict[str, str]]:
    def make(user_id: uuid.UUID, roles: tuple[str, ...] = ("researcher",)) -> dict[str, str]:
        return bearer(token_issuer.access_token(user_id, roles=roles))

    return make


# ---------------------------------------------------------------------------- events


entry_of = event_fields  # the stream entry a producer's outbox relay writes


@pytest.fixture
def publish(redis: Redis, names: dict[str, str]) -> Callable[..., Any]:
    async def add(event: Event | dict[str, str]) -> str:
        fields = entry_of(event) if isinstance(event, Event) else event
        entry_id = await redis.xadd(names["stream"], fields)  # type: ignore[arg-type]
        return entry_id.decode()

    return add


@pytest.fixture
async def consume(app: FastAPI) -> Callable[..., Any]:
    """Read and process everything new on the stream (the group is created first)."""
    await app.state.consumer.ensure_group("0")

    async def run() -> int:
        return await drain(app)

    return run


# ---------------------------------------------------------------------------- live server


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a real uvicorn server (WebSockets need one); yields its ws:// base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def started(make_app: Callable[..., FastAPI], **overrides: Any) -> AsyncIterator[FastAPI]:
    """Another app with changed settings, its lifespan running (``app.state.test_client``)."""
    application = make_app(**overrides)
    async with app_client(application) as client:
        application.state.test_client = client
        await application.state.consumer.ensure_group("0")
        yield application


async def drain(application: FastAPI) -> int:
    """Process everything new on the app's stream."""
    total = 0
    while count := await application.state.consumer.read_new(block_ms=None):
        total += count
    return total
