"""SMTP over TLS against a real aiosmtpd server that requires STARTTLS and a login: the
certificate is checked against the configured CA, credentials travel only inside TLS."""

import datetime as dt
import ssl
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from fedimpute_shared.embedded import free_port
from notification_service.models import DeliveryStatus, EmailMessage

from .conftest import drain, started
from .factories import job_completed


def self_signed(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Inbox:
    def __init__(self):
        self.messages = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def authenticator(inbox):
    def check(server, session, envelope, mechanism, auth_data):
        inbox.logins.append((auth_data.login, session.ssl is not None))
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret-smtp-password"
        return AuthResult(success=ok)

    return check


@pytest.fixture
def tls_smtp(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator(inbox),
        auth_require_tls=True,
    )
    controller.start()
    yield port, cert_file, inbox
    controller.stop()


async def test_starttls_with_a_checked_certificate_and_login(
    make_app, db, users, publish, tls_smtp
):
    port, cert_file, inbox = tls_smtp
    async with started(
        make_app,
        smtp_host="localhost",
        smtp_port=port,
        smtp_security="starttls",
        smtp_ca_file=cert_file,
        smtp_username="mailer",
        smtp_password="s3cret-smtp-password",
    ) as app:
        await publish(job_completed(users.add("ada")))
        await drain(app)
        await app.state.email_sender.send_due()
    [message] = inbox.messages
    assert message["To"] == "ada@example.org"
    assert inbox.logins == [(b"mailer", True)]  # the password went inside TLS


async def test_an_untrusted_certificate_is_refused_and_retried(
    make_app, db, users, publish, tls_smtp
):
    port, _, inbox = tls_smtp
    async with started(
        make_app,
        smtp_host="localhost",
        smtp_port=port,
        smtp_security="starttls",
        smtp_username="mailer",
        smtp_password="s3cret-smtp-password",
    ) as app:  # the system CAs do not know the self-signed certificate
        await publish(job_completed(users.add("ada")))
        await drain(app)
        await app.state.email_sender.send_due()
    row = (await db.scalars(select(EmailMessage))).one()
    assert row.status is DeliveryStatus.PENDING
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error or "certificate" in row.last_error
    assert inbox.messages == []
    assert inbox.logins == []


def test_credentials_in_clear_are_refused(settings):
    from notification_service.config import Settings

    values = settings.model_dump() | {"smtp_username": "mailer", "smtp_security": "none"}
    with pytest.raises(ValueError, match="in clear"):
        Settings(**values)
