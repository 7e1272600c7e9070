"""What a webhook receives: our JSON document, or a Slack incoming-webhook message."""

from __future__ import annotations

import uuid
from typing import Any

from notification_service.models import WebhookFormat

__all__ = ["webhook_body"]


def webhook_body(
    fmt: WebhookFormat,
    *,
    event_id: uuid.UUID,
    event_type: str,
    occurred_at: str,
    summary: str,
    link: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The JSON body sent for one event (``data`` holds only the event's public fields)."""
    if fmt is WebhookFormat.SLACK:
        # Slack's mrkdwn: &, < and > are escaped; <url> is a link.
        escaped = summary.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = f"{escaped} <{link}>" if link and link not in summary else escaped
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
    return {
        "event_id": str(event_id),
        "event_type": event_type,
        "occurred_at": occurred_at,
        "summary": summary,
        "link": link,
        "data": data,
    }
