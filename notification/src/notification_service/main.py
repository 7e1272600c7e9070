"""The notification app: routes, and in the lifespan the event consumer, the email, webhook
and digest senders, and the live fan-out listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fedimpute_shared.app import CoreResources, ServiceLifespan, create_service_app
from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from fedimpute_shared.streams import StreamConsumer
from notification_service.config import Settings
from notification_service.email.digest import DigestWorker
from notification_service.email.mailer import Mailer
from notification_service.email.sender import EmailSender
from notification_service.events.dispatch import Dispatcher
from notification_service.events.processor import EventProcessor
from notification_service.events.router import router as dead_letters_router
from notification_service.live.broker import Broker
from notification_service.live.hub import Hub
from notification_service.live.router import router as live_router
from notification_service.live.tickets import Tickets
from notification_service.metrics import NotificationMetrics
from notification_service.notifications.router import internal_router
from notification_service.notifications.router import router as notifications_router
from notification_service.preferences.router import router as preferences_router
from notification_service.recipients import Directory
from notification_service.templates.router import router as templates_router
from notification_service.webhooks.router import router as webhooks_router
from notification_service.webhooks.sender import WebhookSender, webhook_client

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DESCRIPTION = """
Platform events delivered exactly once in effect: in-app notifications (with a live
WebSocket), email over SMTP, and signed webhooks (Slack-compatible), by each user's
preferences (channels per category, daily digest, quiet hours). Admins edit the templates
and see the events that could not be processed.
"""

TAGS = [
    {"name": "notifications", "description": "My in-app notifications."},
    {"name": "preferences", "description": "How and when I am notified."},
    {"name": "live", "description": "The WebSocket and its tickets."},
    {"name": "webhooks", "description": "My webhook endpoints and their delivery log."},
    {"name": "templates", "description": "Message templates per event type and channel."},
    {"name": "dead letters", "description": "Events that could not be processed."},
]


def _user_service_client(core: CoreResources, settings: Settings) -> Any:
    provider = ServiceTokenProvider(
        settings.user_service_url, settings.service_name, settings.service_client_secret, core.http
    )
    return create_http_client(
        base_url=settings.user_service_url, auth=ServiceTokenAuth(provider, "user-service")
    )


def _lifespan(settings: Settings) -> ServiceLifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI, core: CoreResources) -> AsyncIterator[dict[str, Any]]:
        if core.redis is None:
            raise RuntimeError("notification needs Redis: set REDIS_URL")
        metrics: NotificationMetrics = core.service_metrics
        users = _user_service_client(core, settings)
        directory = Directory(users)
        broker = Broker(
            core.redis,
            settings.ws_channel,
            replay_size=settings.ws_replay_size,
            replay_hours=settings.ws_replay_hours,
        )
        hub = Hub(
            metrics,
            send_timeout=settings.ws_send_timeout_seconds,
            heartbeat_seconds=settings.ws_heartbeat_seconds,
        )
        processor = EventProcessor(
            core.sessionmaker,
            Dispatcher(directory, settings),
            broker,
            max_event_bytes=settings.max_event_bytes,
        )
        consumer = StreamConsumer(
            core.redis, processor, settings.consumer_options(), metrics.consumer
        )
        hooks = webhook_client(settings)
        email = EmailSender(core.sessionmaker, Mailer(settings), settings, metrics)
        webhooks = WebhookSender(core.sessionmaker, hooks, settings, metrics)
        digests = DigestWorker(core.sessionmaker, directory, settings)
        if settings.consumer_enabled:
            core.tasks.run("event-consumer", consumer.run, on_stop=consumer.stop)
        if settings.delivery_workers_enabled:
            poll = settings.delivery_poll_seconds
            core.tasks.every("email-sender", email.send_due, interval=poll)
            core.tasks.every("webhook-sender", webhooks.send_due, interval=poll)
            core.tasks.every(
                "digest", digests.run_once, interval=settings.digest_poll_seconds, single=True
            )
        stop_listening = asyncio.Event()

        async def fan_out() -> None:
            stop_listening.clear()
            await broker.listen(hub.deliver, stop_listening, on_subscribed=hub.resync)

        core.tasks.run("live-fan-out", fan_out, on_stop=stop_listening.set)
        core.tasks.every("live-heartbeat", hub.heartbeat, interval=settings.ws_heartbeat_seconds)
        # Also on app.state, for tests and operators' scripts that drive the workers directly.
        app.state.consumer, app.state.email_sender = consumer, email
        app.state.webhook_sender, app.state.digest_worker = webhooks, digests
        app.state.hub, app.state.broker = hub, broker
        try:
            yield {
                "broker": broker,
                "hub": hub,
                "tickets": Tickets(
                    core.redis, settings.ws_ticket_ttl_seconds, f"{settings.ws_channel}:ticket:"
                ),
                "processor": processor,
                "directory": directory,
            }
        finally:
            await hooks.aclose()
            await users.aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        settings,
        title="FedImpute notification",
        description=DESCRIPTION,
        routers=[
            preferences_router,  # static /notifications/... paths before /{notification_id}
            live_router,
            webhooks_router,
            templates_router,
            dead_letters_router,
            notifications_router,
            internal_router,
        ],
        migrations_dir=MIGRATIONS_DIR,
        service_lifespan=_lifespan(settings),
        uses_redis=True,
        metrics=NotificationMetrics,
        openapi_tags=TAGS,
    )
