"""Every event type the service knows has a default template for each channel it uses, and
each renders with sample data; alerts reach every admin once per state."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from fedimpute_shared.events import AlertRaised, AlertResolved
from notification_service.events.catalog import CATALOG
from notification_service.models import Channel, EmailMessage, Notification
from notification_service.templates.engine import render_parts
from notification_service.templates.samples import DIGEST, sample_context
from notification_service.templates.service import default_templates

PAIRS = sorted((t, ch) for t, spec in CATALOG.items() for ch in spec.channels)


@pytest.mark.parametrize(("event_type", "channel"), PAIRS)
def test_each_channel_of_each_event_has_a_rendering_default(event_type, channel):
    parts = default_templates()[(event_type, channel)]
    rendered = render_parts(channel, parts, sample_context(event_type, "https://x.example"))
    assert all(value.strip() for value in rendered.values())


def test_no_default_template_is_orphaned():
    assert set(default_templates()) == set(PAIRS) | {(DIGEST, Channel.EMAIL)}


def alert(cls, alert_id, **extra):
    return cls(
        producer="monitoring",
        alert_id=alert_id,
        rule="external-service-unhealthy",
        kind="external_unhealthy",
        severity="critical",
        subject="sandbox-wes",
        summary="sandbox-wes is unhealthy (3 min)",
        started_at=datetime.now(UTC),
        **extra,
    )


async def test_alerts_reach_every_admin_once_per_state(app, db, users, publish, consume):
    admins = {users.add("root", admin=True), users.add("ops", admin=True)}
    users.add("researcher")
    alert_id = uuid.uuid4()
    raised = alert(AlertRaised, alert_id, value=1.0, threshold=0.5)
    await publish(raised)
    await publish(alert(AlertRaised, alert_id))  # the same alert again: told once
    await publish(alert(AlertResolved, alert_id, resolved_at=datetime.now(UTC), reason="cleared"))
    await consume()
    rows = (await db.scalars(select(Notification).order_by(Notification.created_at))).all()
    assert {r.user_id for r in rows} == admins
    assert sorted(r.title for r in rows) == [
        "CRITICAL: sandbox-wes is unhealthy (3 min)",
        "CRITICAL: sandbox-wes is unhealthy (3 min)",
        "Resolved: sandbox-wes is unhealthy (3 min)",
        "Resolved: sandbox-wes is unhealthy (3 min)",
    ]
    emails = (await db.scalars(select(EmailMessage))).all()
    assert sorted(e.to_address for e in emails) == sorted(
        ["root@example.org", "ops@example.org"] * 2
    )
