"""Webhook endpoints (each user's own) and queueing an event's deliveries to them.

URLs are checked like the registry's (``fedimpute_shared.urls``): http(s) only, no
credentials, no private, loopback or metadata address unless ``ALLOW_PRIVATE_URLS`` (the
development fleet); the sender connects through ``GuardedTransport``, which checks every
address a name resolves to at connect time.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import Conflict, NotFound, Unprocessable
from fedimpute_shared.urls import UnsafeURLError, check_outbound_url
from notification_service.config import Settings
from notification_service.models import WebhookEndpoint, WebhookFormat
from notification_service.webhooks import repository
from notification_service.webhooks.payloads import webhook_body
from notification_service.webhooks.schemas import EndpointIn, EndpointUpdate
from notification_service.webhooks.signing import endpoint_secret

__all__ = [
    "create_endpoint",
    "get_endpoint",
    "queue_event",
    "rotate_secret",
    "secret_of",
    "update_endpoint",
]


def _checked_url(url: str, settings: Settings) -> str:
    try:
        return check_outbound_url(url, allow_private=settings.allow_private_urls)
    except UnsafeURLError as exc:
        raise Unprocessable(f"this webhook URL cannot be used: {exc}") from None


def secret_of(endpoint: WebhookEndpoint, settings: Settings) -> str:
    return endpoint_secret(
        settings.webhook_signing_key.get_secret_value(), endpoint.id, endpoint.secret_version
    )


async def get_endpoint(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await repository.owned(session, user_id, endpoint_id)
    if endpoint is None:
        raise NotFound("no such webhook")
    return endpoint


async def create_endpoint(
    session: AsyncSession, user_id: uuid.UUID, body: EndpointIn, settings: Settings
) -> WebhookEndpoint:
    if await repository.count(session, user_id) >= settings.webhook_max_endpoints_per_user:
        raise Conflict(f"at most {settings.webhook_max_endpoints_per_user} webhooks per user")
    endpoint = WebhookEndpoint(
        user_id=user_id,
        url=_checked_url(body.url, settings),
        format=body.format,
        description=body.description,
        active=True,
        secret_version=1,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    user_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    settings: Settings,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, user_id, endpoint_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        changes["url"] = _checked_url(changes["url"], settings)
    for name, value in changes.items():
        if value is not None or name == "description":
            setattr(endpoint, name, value)
    await session.flush()
    return endpoint


async def rotate_secret(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, user_id, endpoint_id)
    endpoint.secret_version += 1
    await session.flush()
    return endpoint


async def queue_event(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    occurred_at: str,
    summary: str,
    link: str | None,
    data: dict[str, Any],
) -> int:
    """One delivery per active endpoint of the user; how many were queued."""
    endpoints = await repository.active_endpoints(session, user_id)
    for endpoint in endpoints:
        body = webhook_body(
            WebhookFormat(endpoint.format),
            event_id=event_id,
            event_type=event_type,
            occurred_at=occurred_at,
            summary=summary,
            link=link,
            data=data,
        )
        await repository.insert_delivery(
            session,
            {
                "id": uuid.uuid4(),
                "endpoint_id": endpoint.id,
                "event_id": event_id,
                "event_type": event_type,
                "body": body,
                "next_attempt_at": utcnow(),
            },
        )
    return len(endpoints)
