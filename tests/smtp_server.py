"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for offline tests.

``smtp_server``: plain SMTP, no login (tests set ``SMTP_STARTTLS=false``).
``smtp_tls_server``: what a production relay looks like: STARTTLS required
before anything, then AUTH LOGIN/PLAIN; its certificate is self-signed for
127.0.0.1 and trusted through ``SSL_CERT_FILE``, which the test sets.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.settings.mail import MailSettings
from tests.conftest import free_port

HOST = "127.0.0.1"
USER = "bot@ecollect.test"
PASSWORD = "clave-smtp-de-pruebas"
SENDER = "soporte@ecollect.test"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: Optional[str]
    tls: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""


@dataclass
class SmtpServer:
    port: int
    ca_file: Optional[Path] = None
    received: list[Received] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's handler hook
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._arrived:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, login, session.ssl is not None)  # type: ignore[arg-type]
            )
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` messages, waiting for them to arrive (fails the test if they do not)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"esperaba {count} correos, llegaron {len(self.received)}")
                self._arrived.wait(left)
            return list(self.received)

    def settings(self, **overrides: Any) -> MailSettings:
        values: dict[str, Any] = dict(host=HOST, port=self.port, sender=SENDER, starttls=False, timeout=5.0)
        if self.ca_file is not None:
            values.update(starttls=True, user=USER, password=PASSWORD)
        values.update(overrides)
        return MailSettings(**values)


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, auth_data=auth_data if ok else None)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp de pruebas")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def running(server: SmtpServer, **smtp_options: Any) -> Iterator[SmtpServer]:
    controller = Controller(server, hostname=HOST, port=server.port, **smtp_options)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running(SmtpServer(free_port()), auth_require_tls=False)


@pytest.fixture
def smtp_tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # read by ssl.create_default_context()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    yield from running(
        SmtpServer(free_port(), ca_file=cert_file),
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
    )
