"""Sending e-mail through the SMTP server the deployer configures.

Mail is off unless ``SMTP_HOST`` is set. A ``Postman`` composes and sends on
background threads: whoever is chatting never waits for the SMTP server, so
neither its slowness nor whether a mail was sent at all shows in the answer.
It also caps how many mails one address receives (``Quota``), so the chat
cannot be used to flood someone's inbox.

Settings (environment):

- ``SMTP_HOST``: the server; empty = mail off.
- ``SMTP_PORT``: 587 by default.
- ``SMTP_USER`` / ``SMTP_PASSWORD``: login, when the server wants one.
- ``SMTP_FROM``: the sender address (``SMTP_USER`` when it is an address).
- ``SMTP_STARTTLS``: true by default; a server that does not offer it gets
  nothing, never a mail in clear text.
- ``SMTP_SSL``: false by default; true for implicit TLS (port 465).
- ``SMTP_TIMEOUT``: seconds per SMTP operation, 10 by default.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Callable, Mapping, Optional

from bot.privacy import mask_contacts, mask_email

logger = logging.getLogger(__name__)

_TRUE = ("1", "true", "yes", "si", "sí", "on")
_FALSE = ("0", "false", "no", "off")


class MailConfigError(ValueError):
    """The SMTP settings cannot work; ``str()`` names the variable, in Spanish."""


class MailError(RuntimeError):
    """A mail could not be handed to the SMTP server."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise MailConfigError(f"{name} debe ser true o false (valor actual: {raw!r})")


def _plain_address(value: str) -> bool:
    """One bare address, nothing a header or an SMTP command could be smuggled in."""
    return value.count("@") == 1 and not any(c.isspace() or c in "<>,;\"'()\\" for c in value) and "." in value.split("@")[1]


@dataclass(frozen=True)
class MailSettings:
    host: str
    sender: str
    port: int = 587
    user: str = ""
    password: str = ""
    starttls: bool = True
    ssl: bool = False
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Optional["MailSettings"]:
        """The configured server, or None when ``SMTP_HOST`` is empty (mail off)."""
        env = os.environ if env is None else env
        host = (env.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        raw_port = (env.get("SMTP_PORT") or "").strip()
        try:
            port = int(raw_port) if raw_port else 587
        except ValueError:
            raise MailConfigError(f"SMTP_PORT debe ser un número de puerto (valor actual: {raw_port!r})") from None
        if not 0 < port < 65536:
            raise MailConfigError(f"SMTP_PORT debe ser un número de puerto (valor actual: {raw_port!r})")
        raw_timeout = (env.get("SMTP_TIMEOUT") or "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 10.0
        except ValueError:
            raise MailConfigError(f"SMTP_TIMEOUT debe ser un número de segundos (valor actual: {raw_timeout!r})") from None
        user = (env.get("SMTP_USER") or "").strip()
        sender = (env.get("SMTP_FROM") or "").strip() or (user if "@" in user else "")
        if not _plain_address(sender):
            raise MailConfigError("SMTP_FROM debe ser la dirección remitente, p. ej. soporte@ecollect.co")
        use_ssl = _flag(env, "SMTP_SSL", False)
        return cls(
            host=host,
            sender=sender,
            port=port,
            user=user,
            password=env.get("SMTP_PASSWORD") or "",
            # Implicit TLS already encrypts; STARTTLS applies to plain connections only.
            starttls=_flag(env, "SMTP_STARTTLS", True) and not use_ssl,
            ssl=use_ssl,
            timeout=timeout if timeout > 0 else 10.0,
        )


@dataclass(frozen=True)
class Mail:
    """One plain-text mail to one address; ``topic`` is what the quota counts per address."""

    to: str
    subject: str
    text: str
    topic: str = ""

    def __post_init__(self) -> None:
        if not _plain_address(self.to):
            raise MailError("dirección de destino no válida")


def message_of(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    # A line break in a value would start a new header: never from our data.
    message["Subject"] = " ".join(mail.subject.split())
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    message.set_content(mail.text)
    return message


def send(settings: MailSettings, mail: Mail) -> None:
    """Hand ``mail`` to the SMTP server, encrypted unless told otherwise; ``MailError`` if not."""
    message = message_of(mail, settings.sender)
    context = ssl.create_default_context()
    try:
        if settings.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.starttls:
                client.starttls(context=context)  # refuses (SMTPNotSupportedError) rather than go on in clear
            if settings.user:
                client.login(settings.user, settings.password)
            client.send_message(message, from_addr=settings.sender, to_addrs=[mail.to])
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


class Quota:
    """How many mails an address may receive, counted in this process's memory.

    One action server runs per deployment, so the count is the deployment's;
    a restart forgets it (at worst one more mail per address). Per address
    and topic (one ticket, one list) and per address overall.
    """

    def __init__(
        self,
        per_topic: Limit = Limit(1, 600),
        per_address: Limit = Limit(5, 3600),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_topic = per_topic
        self.per_address = per_address
        self.clock = clock
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allows(self, address: str, topic: str) -> bool:
        """Whether one more mail would be allowed now, without counting it (``take`` decides)."""
        return self._check(address, topic, count=False)

    def take(self, address: str, topic: str) -> bool:
        """Whether one more mail to ``address`` about ``topic`` is allowed now; counted if so."""
        return self._check(address, topic, count=True)

    def _check(self, address: str, topic: str, count: bool) -> bool:
        address = address.strip().lower()
        now = self.clock()
        rules = [((address, f"topic:{topic}"), self.per_topic), ((address, "*"), self.per_address)]
        with self._lock:
            self._forget(now)
            for key, limit in rules:
                if sum(1 for at in self._sent.get(key, ()) if at > now - limit.seconds) >= limit.count:
                    return False
            if count:
                for key, _ in rules:
                    self._sent.setdefault(key, deque()).append(now)
            return True

    def _forget(self, now: float) -> None:
        """Drop what no window looks at any more, so memory follows recent mail only."""
        horizon = now - max(self.per_topic.seconds, self.per_address.seconds)
        for key in list(self._sent):
            window = self._sent[key]
            while window and window[0] <= horizon:
                window.popleft()
            if not window:
                del self._sent[key]


Compose = Callable[[], Optional[Mail]]


class Postman:
    """Composes and sends mails on background threads; never raises to the caller.

    ``post`` takes a function that builds the mail (it may read the ticket
    store or JSM), so that work happens off the caller's path too; it returns
    None when there is nothing to send. Failures are logged with the address
    masked.
    """

    def __init__(self, settings: MailSettings, quota: Optional[Quota] = None, *, workers: int = 2, max_pending: int = 200) -> None:
        self.settings = settings
        self.quota = quota or Quota()
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mail")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def post(self, compose: Compose) -> bool:
        """Queue ``compose`` and its sending; False (logged) when too many are waiting."""
        with self._lock:
            if len(self._pending) >= self.max_pending:
                logger.warning("mail queue full (%d waiting): one mail dropped", len(self._pending))
                return False
            try:
                future = self._executor.submit(self._deliver, compose)
            except RuntimeError:  # shut down: the process is stopping
                logger.warning("mail dropped: the mail threads are stopped")
                return False
            self._pending.add(future)
        future.add_done_callback(self._done)
        return True

    def may_send(self, address: str, topic: str) -> bool:
        """Whether the quota would let a mail through now (not counted), logged when not.

        For composers to skip slow work (a JSM call) that would be thrown away.
        """
        if self.quota.allows(address, topic):
            return True
        self._refused(address, topic)
        return False

    def _refused(self, address: str, topic: str) -> None:
        logger.info("mail to %s about %s not sent: quota reached", mask_email(address), topic or "-")

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _deliver(self, compose: Compose) -> None:
        try:
            mail = compose()
        except Exception as exc:  # noqa: BLE001 - a background job: log, never die silently
            logger.error("mail not composed: %s", mask_contacts(f"{type(exc).__name__}: {exc}"))
            return
        if mail is None:
            return
        if not self.quota.take(mail.to, mail.topic):
            self._refused(mail.to, mail.topic)
            return
        try:
            send(self.settings, mail)
        except MailError as exc:
            logger.warning("mail to %s about %s not sent: %s", mask_email(mail.to), mail.topic or "-", mask_contacts(str(exc)))
            return
        logger.info("mail to %s about %s sent", mask_email(mail.to), mail.topic or "-")

    def join(self, timeout: float = 30.0) -> bool:
        """Wait for the mails posted so far; whether they all finished in time."""
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@lru_cache(maxsize=1)
def postman_from_env() -> Optional[Postman]:
    """The process's postman (its quota is the process's), or None when mail is off or misconfigured."""
    try:
        settings = MailSettings.from_env()
    except MailConfigError as exc:
        logger.error("mail is off: %s", exc)
        return None
    return Postman(settings) if settings else None
