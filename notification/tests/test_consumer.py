"""The stream consumer: each event once in effect, bad entries dead-lettered while the consumer
goes on, failures retried then given up, admins told, a status told only once."""

import json
import uuid

from sqlalchemy import func, select

from notification_service.models import (
    DeadLetter,
    EmailMessage,
    Notification,
    ProcessedEvent,
    WebhookDelivery,
)

from .conftest import entry_of
from .factories import file_validated, health_changed, job_completed, job_status


async def count(db, model, *where):
    return await db.scalar(select(func.count()).select_from(model).where(*where))


async def test_an_event_delivered_twice_has_its_effects_once(app, db, users, publish, consume):
    owner = users.add("ada")
    event = job_completed(owner)
    await publish(event)
    await publish(event)  # the relay published it again (a crash before its outbox commit)
    assert await consume() == 2

    assert await count(db, ProcessedEvent) == 1
    assert await count(db, Notification, Notification.user_id == owner) == 1
    emails = (await db.scalars(select(EmailMessage))).all()
    assert [e.to_address for e in emails] == ["ada@example.org"]


async def test_same_outcome_with_a_new_event_id_is_not_told_again(app, db, users, publish, consume):
    owner = users.add()
    first = job_completed(owner)
    await publish(first)
    await publish(job_completed(owner, job_id=first.job_id))  # job-processor repeated itself
    await consume()
    assert await count(db, Notification) == 1
    assert await count(db, EmailMessage) == 1


async def test_bad_entries_are_dead_lettered_and_the_consumer_goes_on(
    app, db, users, publish, consume, redis, names
):
    owner = users.add()
    good = file_validated(owner)
    unknown = entry_of(good) | {"event_type": "file.teleported"}
    unknown["payload"] = json.dumps(
        json.loads(unknown["payload"]) | {"event_type": "file.teleported"}
    )
    invalid = file_validated(owner)
    broken_payload = json.loads(entry_of(invalid)["payload"]) | {"status": "shiny"}
    deep = "[" * 5000 + "]" * 5000
    await publish({"event_id": "x", "event_type": "file.validated", "payload": "{not json"})
    await publish(
        {"event_id": str(uuid.uuid4()), "event_type": "a", "version": "1", "payload": deep}
    )
    await publish(unknown)
    await publish(entry_of(invalid) | {"payload": json.dumps(broken_payload)})
    await publish({"event_type": "file.validated", "version": "1", "payload": "x" * 70_000})
    await publish(good)
    assert await consume() == 6

    letters = (await db.scalars(select(DeadLetter).order_by(DeadLetter.created_at))).all()
    reasons = [letter.reason for letter in letters]
    assert len(letters) == 5
    assert "not JSON" in reasons[0]
    assert "not JSON" in reasons[1] or "nests deeper" in reasons[1]
    assert "unknown event type 'file.teleported'" in reasons[2]
    assert "status" in reasons[3]  # names the field ...
    assert "shiny" not in reasons[3]  # ... not the value
    assert "bytes" in reasons[4]
    # The good event after them was processed, and nothing is left pending.
    assert await count(db, Notification, Notification.user_id == owner) == 1
    pending = await redis.xpending(names["stream"], "notification")
    assert pending["pending"] == 0


async def test_a_failing_event_is_retried_then_dead_lettered(
    app, db, users, publish, consume, redis, names
):
    owner = users.add()
    users.down = True  # user-service answers 503: the email cannot be addressed
    await publish(job_completed(owner))
    await consume()
    consumer = app.state.consumer
    assert (await redis.xpending(names["stream"], "notification"))["pending"] == 1
    assert await count(db, ProcessedEvent) == 0  # nothing half-done

    consumer._idle_ms = 0  # claim at once instead of after CONSUMER_CLAIM_IDLE_SECONDS
    for _ in range(4):
        await consumer.claim_stale()
    assert await count(db, DeadLetter) == 0
    await consumer.claim_stale()  # the 5th delivery failed too: given up
    letter = (await db.scalars(select(DeadLetter))).one()
    assert "gave up after 5 attempts" in letter.reason
    assert "503" in letter.reason
    assert (await redis.xpending(names["stream"], "notification"))["pending"] == 0


async def test_a_retry_that_succeeds_is_processed_once(app, db, users, publish, consume):
    owner = users.add()
    users.down = True
    await publish(job_completed(owner))
    await consume()
    users.down = False
    consumer = app.state.consumer
    consumer._idle_ms = 0
    await consumer.claim_stale()
    assert await count(db, Notification) == 1
    assert await count(db, EmailMessage) == 1


async def test_service_health_goes_to_admins_once_per_change(app, db, users, publish, consume):
    admins = [users.add("root", admin=True), users.add("ops", admin=True)]
    users.add("researcher")
    change = health_changed("unhealthy")
    await publish(change)
    await publish(health_changed("unhealthy", service_id=change.service_id))  # same status
    await consume()
    rows = (await db.scalars(select(Notification))).all()
    assert sorted(r.user_id for r in rows) == sorted(admins)
    assert rows[0].title == "sandbox-wes is unhealthy"
    assert rows[0].link == "https://imputation.example.org/services/sandbox-wes"


async def test_job_status_changes_are_live_only_and_told_once(
    app, db, users, publish, consume, redis, names
):
    owner = users.add()
    running = job_status(owner, "running", previous_status="queued")
    await publish(running)
    await publish(job_status(owner, "running", job_id=running.job_id))  # a repeated poll
    await consume()
    assert await count(db, Notification) == 0  # status changes are pushed, not stored
    pushed = await redis.xrange(f"{names['channel']}:{owner}")
    assert len(pushed) == 1
    message = json.loads(pushed[0][1][b"m"])
    assert message["type"] == "job_status"
    assert message["status"] == "running"
    assert message["job_id"] == str(running.job_id)


async def test_webhook_deliveries_are_queued_per_active_endpoint(
    app, client, db, users, publish, consume, user_token
):
    owner = users.add()
    headers = user_token(owner)
    for url in ("https://hooks.example.org/a", "https://hooks.example.org/b"):
        response = await client.post("/notifications/webhooks", json={"url": url}, headers=headers)
        assert response.status_code == 201, response.text
    await publish(job_completed(owner))
    await consume()
    assert await count(db, WebhookDelivery) == 2


async def test_the_consumer_group_starts_at_new_entries(app, db, users, publish, redis, names):
    owner = users.add()
    await publish(job_completed(owner))  # before the service ever ran: not its business
    consumer = app.state.consumer
    await consumer.ensure_group()
    await publish(file_validated(owner))
    assert await consumer.read_new() == 1
    assert await count(db, Notification) == 1
