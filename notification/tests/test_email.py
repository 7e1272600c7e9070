"""Email against a real SMTP server (aiosmtpd): what is sent, retries while SMTP is down and
delivery once it is back, final failures, account emails with sealed tokens, quiet hours and
the daily digest."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from fedimpute_shared.sealed import generate_keypair
from notification_service.models import DeliveryStatus, EmailMessage

from .conftest import APP_URL, DELIVERY_PUBLIC, drain, entry_of, started
from .factories import PasswordReset, job_completed, password_reset


async def send(app):
    return await app.state.email_sender.send_due()


def parts(message):
    text_part = message.get_body(preferencelist=("plain",)).get_content()
    html_part = message.get_body(preferencelist=("html",)).get_content()
    return text_part, html_part


async def test_a_completed_job_sends_one_email_with_text_and_html(
    app, users, publish, consume, smtp
):
    owner = users.add("ada")
    event = job_completed(owner, job_name="GWAS <chr20>")
    await publish(event)
    await publish(event)
    await consume()
    assert await send(app) == 1
    assert await send(app) == 0

    [message] = smtp.messages
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "[FedImpute] Job “GWAS <chr20>” completed"
    assert message["Message-ID"].endswith("@fedimpute.invalid>")
    text_part, html_part = parts(message)
    assert "Hello ada," in text_part
    assert f"{APP_URL}/jobs/{event.job_id}" in text_part
    assert "<strong>GWAS &lt;chr20&gt;</strong>" in html_part  # escaped in HTML
    assert f'href="{APP_URL}/jobs/{event.job_id}"' in html_part


async def test_smtp_down_then_back_delivers_later_and_once(
    app, db, users, publish, consume, smtp, clock
):
    owner = users.add()
    await publish(job_completed(owner))
    await consume()
    smtp.stop()
    assert await send(app) == 1
    row = (await db.scalars(select(EmailMessage))).one()
    assert row.status is DeliveryStatus.PENDING
    assert row.attempts == 1
    assert "Connect" in row.last_error or "refused" in row.last_error.lower()
    assert row.next_attempt_at > clock.now() + timedelta(seconds=20)  # backed off

    smtp.start()
    assert await send(app) == 0  # not due yet
    await clock.advance(3600)
    assert await send(app) == 1
    await clock.advance(3600)
    assert await send(app) == 0
    assert len(smtp.messages) == 1
    await db.refresh(row)
    assert row.status is DeliveryStatus.SENT


async def test_a_refused_recipient_fails_for_good(app, db, users, publish, consume, smtp):
    owner = users.add("gone")
    smtp.inbox.refuse.add("gone@example.org")
    await publish(job_completed(owner))
    await consume()
    await send(app)
    row = (await db.scalars(select(EmailMessage))).one()
    assert row.status is DeliveryStatus.FAILED
    assert "550" in row.last_error
    assert row.attempts == 1


async def test_out_of_attempts_is_a_final_failure(make_app, db, users, publish, smtp, clock):
    async with started(make_app, email_max_attempts=2) as app:
        await publish(job_completed(users.add()))
        await drain(app)
        smtp.stop()
        await send(app)
        await clock.advance(7200)
        await send(app)
        row = (await db.scalars(select(EmailMessage))).one()
        assert row.status is DeliveryStatus.FAILED
        assert row.attempts == 2


async def test_password_reset_link_is_opened_only_when_sent(app, db, users, publish, consume, smtp):
    event = password_reset(DELIVERY_PUBLIC, "one-time-reset-token-42", email="ada@example.org")
    await publish(event)
    await consume()
    row = (await db.scalars(select(EmailMessage))).one()
    assert row.sealed_token == event.sealed_token  # queued sealed, never in clear
    dump = await db.scalar(text("SELECT string_agg(context::text, '') FROM email_messages"))
    assert "one-time-reset-token-42" not in dump
    assert event.sealed_token not in dump  # not in the template context either

    await send(app)
    [message] = smtp.messages
    text_part, html_part = parts(message)
    link = f"{APP_URL}/reset-password?token=one-time-reset-token-42"
    assert link in text_part
    assert link in html_part
    assert event.sealed_token not in text_part
    await db.refresh(row)
    assert row.status is DeliveryStatus.SENT
    assert row.sealed_token is None  # purged once sent


async def test_a_token_sealed_to_another_key_fails_and_is_purged(
    app, db, users, publish, consume, smtp
):
    _, stranger_public = generate_keypair()
    await publish(password_reset(stranger_public, "whatever"))
    await consume()
    await send(app)
    row = (await db.scalars(select(EmailMessage))).one()
    assert row.status is DeliveryStatus.FAILED
    assert row.sealed_token is None
    assert "not sealed to this key" in row.last_error
    assert smtp.messages == []


async def test_account_email_ignores_preferences_and_quiet_hours(
    app, client, db, users, publish, consume, smtp, user_token, clock
):
    user_id = uuid.uuid4()
    now = clock.now()
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    response = await client.patch(
        "/notifications/preferences",
        json={"quiet_hours": quiet, "digest": "daily"},
        headers=user_token(user_id),
    )
    assert response.status_code == 200, response.text
    await publish(password_reset(DELIVERY_PUBLIC, "t0k3n", user_id=user_id))
    await consume()
    await send(app)
    assert len(smtp.messages) == 1


async def test_quiet_hours_hold_an_email_until_they_end(
    app, client, db, users, publish, consume, smtp, user_token, clock
):
    owner = users.add()
    now = clock.now()
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }
    await client.patch(
        "/notifications/preferences", json={"quiet_hours": quiet}, headers=user_token(owner)
    )
    await publish(job_completed(owner))
    await consume()
    assert await send(app) == 0
    await clock.advance(2 * 3600 + 60)
    assert await send(app) == 1
    assert len(smtp.messages) == 1


async def test_daily_digest_collects_emails_into_one(
    app, client, db, users, publish, consume, smtp, user_token, clock
):
    owner = users.add("ada")
    await client.patch(
        "/notifications/preferences",
        json={"digest": "daily", "digest_hour": (clock.now().hour + 1) % 24},
        headers=user_token(owner),
    )
    await publish(job_completed(owner, job_name="first"))
    await publish(job_completed(owner, job_name="second"))
    await consume()
    digests = app.state.digest_worker
    await digests.run_once()
    assert await send(app) == 0  # nothing before the digest hour
    await clock.advance(3600)
    assert await digests.run_once() == 1
    assert await send(app) == 1
    await clock.advance(3600)
    assert await digests.run_once() == 0
    [message] = smtp.messages
    assert message["Subject"] == "[FedImpute] Your daily summary: 2 notification(s)"
    text_part, _ = parts(message)
    assert "Job “first” completed" in text_part
    assert "Job “second” completed" in text_part


async def test_an_admin_template_is_used_and_a_broken_one_falls_back(
    app, client, db, users, publish, consume, smtp, user_token
):
    admin = user_token(uuid.uuid4(), roles=("admin",))
    custom = {
        "subject": "Done: {{ event.job_name }}",
        "text": "Results: {{ link }}",
        "html": "<p>Results: <a href='{{ link }}'>here</a></p>",
    }
    response = await client.put(
        "/notifications/templates/job.completed/email", json={"parts": custom}, headers=admin
    )
    assert response.status_code == 200, response.text
    owner = users.add()
    await publish(job_completed(owner, job_name="custom"))
    await consume()
    await send(app)
    assert smtp.messages[-1]["Subject"] == "Done: custom"

    # Saved directly (the API would refuse it): a template that fails on real data.
    await db.execute(
        text(
            "UPDATE template_overrides SET parts = jsonb_set(parts, '{subject}', "
            "'\"{{ event.job_name.nope }}\"')"
        )
    )
    await db.commit()
    await publish(job_completed(owner, job_name="fallback"))
    await consume()
    await send(app)
    assert smtp.messages[-1]["Subject"] == "[FedImpute] Job “fallback” completed"


class AccountUnlock(PasswordReset):
    event_type = "user.account_unlock_requested"
    version = 1
    locked_until: datetime


class RegistrationAttempted(PasswordReset):
    event_type = "user.registration_attempted"
    version = 1


async def test_unlock_and_registration_attempt_emails_carry_their_links(
    app, db, users, publish, consume, smtp
):
    sealed = password_reset(DELIVERY_PUBLIC, "unlock-token-7").model_dump()
    until = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    await publish(AccountUnlock(**(sealed | {"event_id": uuid.uuid4(), "locked_until": until})))
    attempt = password_reset(DELIVERY_PUBLIC, "reset-token-8", email="bob@example.org").model_dump()
    await publish(RegistrationAttempted(**(attempt | {"event_id": uuid.uuid4()})))
    await consume()
    await send(app)
    unlock, registration = sorted(smtp.messages, key=lambda m: m["To"])
    unlock_text, _ = parts(unlock)
    assert f"{APP_URL}/unlock?token=unlock-token-7" in unlock_text
    assert "locked until 2030-01-01 12:00 UTC" in unlock_text
    registration_text, _ = parts(registration)
    assert f"{APP_URL}/reset-password?token=reset-token-8" in registration_text
    assert "already belongs to your account" in registration_text


async def test_a_reset_with_a_clear_token_is_dead_lettered_never_mailed(
    app, db, users, publish, consume, smtp
):
    from notification_service.models import DeadLetter

    clear = entry_of(password_reset(DELIVERY_PUBLIC, "x"))
    payload = json.loads(clear["payload"]) | {"version": 1, "reset_token": "in-clear-123"}
    del payload["sealed_token"]
    await publish(clear | {"version": "1", "payload": json.dumps(payload)})
    await consume()
    await send(app)
    assert smtp.messages == []
    letter = (await db.scalars(select(DeadLetter))).one()
    assert "version 1" in letter.reason
