"""The webhook sender: claims due deliveries, POSTs each signed body with a hard timeout
through the guarded transport (no private addresses unless allowed, no redirects followed),
and records the outcome in the delivery log: 2xx sent; 408, 429 and 5xx, timeouts and
connection failures retried with back-off; other answers failed for good."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.http import create_http_client
from fedimpute_shared.urls import GuardedTransport
from notification_service.config import Settings
from notification_service.delivery import Attempt, RetryPolicy, claim_due, record_attempt
from notification_service.metrics import NotificationMetrics
from notification_service.models import WebhookDelivery, WebhookEndpoint
from notification_service.webhooks.service import secret_of
from notification_service.webhooks.signing import SIGNATURE_HEADER, sign

__all__ = ["WebhookSender", "webhook_client"]

_RETRYABLE = frozenset({408, 425, 429})


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    return create_http_client(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        transport=GuardedTransport(allow_private=settings.allow_private_urls),
        follow_redirects=False,
        headers={"User-Agent": "FedImpute-Webhooks/1"},
    )


class WebhookSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
        settings: Settings,
        metrics: NotificationMetrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._policy = RetryPolicy(
            settings.webhook_max_attempts,
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_seconds,
        )

    async def send_due(self) -> int:
        """One round: every due delivery (a batch at most), concurrently."""
        async with session_scope(self._sessionmaker) as session:
            claimed = await claim_due(
                session,
                WebhookDelivery,
                now=utcnow(),
                lease_seconds=self._settings.delivery_lease_seconds,
                limit=self._settings.delivery_batch_size,
            )
            endpoints = {
                d.endpoint_id: await session.get(WebhookEndpoint, d.endpoint_id) for d in claimed
            }
        results = await asyncio.gather(*(self._post(d, endpoints[d.endpoint_id]) for d in claimed))
        await self._record(results)
        return len(claimed)

    async def _post(
        self, delivery: WebhookDelivery, endpoint: WebhookEndpoint | None
    ) -> tuple[uuid.UUID, Attempt, int | None, int]:
        if endpoint is None or not endpoint.active:
            return delivery.id, Attempt(False, "the webhook is disabled", permanent=True), None, 0
        body = json.dumps(delivery.body, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(utcnow().timestamp())
        headers = {
            "Content-Type": "application/json",
            "X-FedImpute-Event": delivery.event_type,
            "X-FedImpute-Delivery": str(delivery.id),
            SIGNATURE_HEADER: sign(secret_of(endpoint, self._settings), timestamp, body),
        }
        started = time.monotonic()
        status: int | None = None
        try:
            status = await asyncio.wait_for(
                self._status_of(endpoint.url, body, headers), self._settings.webhook_timeout_seconds
            )
            attempt = _judge(status)
        except (httpx.TimeoutException, TimeoutError):
            attempt = Attempt(False, "no answer within the timeout")
        except httpx.HTTPError as exc:
            attempt = Attempt(False, f"{type(exc).__name__}: {exc}"[:300])
        elapsed = int((time.monotonic() - started) * 1000)
        return delivery.id, attempt, status, elapsed

    async def _status_of(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status; the response body is never read (it may be huge)."""
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            return response.status_code

    async def _record(self, results: list[tuple[uuid.UUID, Attempt, int | None, int]]) -> None:
        now = utcnow()
        async with session_scope(self._sessionmaker) as session:
            for delivery_id, attempt, status, elapsed in results:
                delivery = await session.get(WebhookDelivery, delivery_id)
                if delivery is None:
                    continue  # its endpoint was deleted meanwhile
                delivery.last_status_code, delivery.duration_ms = status, elapsed
                outcome = record_attempt(delivery, attempt, self._policy, now)
                self._metrics.deliveries.labels(
                    "webhook", {"pending": "retry"}.get(outcome, str(outcome))
                ).inc()


def _judge(status: int) -> Attempt:
    if 200 <= status < 300:
        return Attempt(True)
    if status >= 500 or status in _RETRYABLE:
        return Attempt(False, f"answered {status}")
    return Attempt(False, f"answered {status}", permanent=True)
