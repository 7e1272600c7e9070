"""SMTP with aiosmtplib: composing a message (text and HTML parts) and sending a batch over
one connection, with each failure classified as permanent (5xx: refused for good) or
transient (4xx, connection refused, timeouts: tried again later)."""

from __future__ import annotations

import email.utils
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage

import aiosmtplib

from notification_service.config import Settings, SmtpSecurity
from notification_service.delivery import Attempt

__all__ = ["Mailer", "Outgoing", "compose"]

_DOMAIN = "fedimpute.invalid"


@dataclass(frozen=True)
class Outgoing:
    id: uuid.UUID
    to_address: str
    subject: str
    text: str
    html: str


def compose(outgoing: Outgoing, sender: str) -> MimeMessage:
    """A multipart/alternative message; its Message-ID is the queue row's id, so a receiver
    can recognise the rare duplicate (a crash between the send and its record)."""
    message = MimeMessage()
    message["From"] = sender
    message["To"] = outgoing.to_address
    message["Subject"] = outgoing.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = f"<{outgoing.id}@{_DOMAIN}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    return message


def _classify(error: Exception) -> Attempt:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        permanent = all(500 <= code < 600 for code in codes)
        return Attempt(False, f"recipient refused ({', '.join(map(str, codes))})", permanent)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        permanent = 500 <= error.code < 600
        return Attempt(False, f"SMTP {error.code}: {error.message[:200]}", permanent)
    return Attempt(False, f"{type(error).__name__}: {error}"[:300])


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        context = None
        if s.smtp_security is not SmtpSecurity.NONE:
            context = ssl.create_default_context(
                cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None
            )
            if not s.smtp_validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security is SmtpSecurity.TLS,
            start_tls=s.smtp_security is SmtpSecurity.STARTTLS,
            tls_context=context,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_seconds,
        )

    async def send_batch(self, batch: Sequence[Outgoing]) -> dict[uuid.UUID, Attempt]:
        """Send each message over one connection; the outcome of each."""
        results: dict[uuid.UUID, Attempt] = {}
        client = self._client()
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            failure = _classify(exc)
            return {item.id: Attempt(False, failure.error) for item in batch}
        try:
            for item in batch:
                try:
                    await client.send_message(compose(item, self._settings.mail_from))
                    results[item.id] = Attempt(True)
                except aiosmtplib.SMTPServerDisconnected as exc:
                    results[item.id] = _classify(exc)
                    break
                except (aiosmtplib.SMTPException, OSError) as exc:
                    results[item.id] = _classify(exc)
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        lost = Attempt(False, "the SMTP connection closed before this message")
        return {item.id: results.get(item.id, lost) for item in batch}
