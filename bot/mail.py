"""Sending e-mail through the SMTP server the deployer configures.

Mail is off unless ``SMTP_HOST`` is set. A ``Postman`` composes and sends on
background threads: whoever is chatting never waits for the SMTP server, so
neither its slowness nor whether a mail was sent at all shows in the answer.
It also caps how many mails one address receives (``Quota``), so the chat
cannot be used to flood someone's inbox.

Its settings (``SMTP_*``) are read by ``bot.settings.mail``.
"""

from __future__ import annotations

import logging
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
from typing import Callable, Optional

from bot.privacy import mask_contacts, mask_email, mask_sender
from bot.settings.mail import MailSettings, plain_address
from bot.sliding_window import SlidingWindow

logger = logging.getLogger(__name__)


class MailError(RuntimeError):
    """A mail could not be handed to the SMTP server."""


@dataclass(frozen=True)
class Mail:
    """One plain-text mail to one address; ``topic`` is what the quota counts per address."""

    to: str
    subject: str
    text: str
    topic: str = ""

    def __post_init__(self) -> None:
        if not plain_address(self.to):
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
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
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
        address = mailbox(address)
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

# Providers where dots in the local part do not change the mailbox.
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def mailbox(address: str) -> str:
    """The mailbox an address reaches, for counting: «Ana.Perez+eco7@gmail.com» is «anaperez@gmail.com».

    Sub-addresses («+etiqueta») reach the same inbox on every major provider,
    and Gmail ignores dots; counting by the written address would let one
    inbox receive a mail for each spelling.
    """
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


class Postman:
    """Composes and sends mails on background threads; never raises to the caller.

    ``post`` takes a function that builds the mail (it may read the ticket
    store or JSM), so that work happens off the caller's path too; it returns
    None when there is nothing to send. Failures are logged with the address
    masked.
    """

    def __init__(
        self,
        settings: MailSettings,
        quota: Optional[Quota] = None,
        *,
        workers: int = 2,
        max_pending: int = 200,
        per_requester: Limit = Limit(5, 3600),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.quota = quota or Quota()
        self.max_pending = max_pending
        self._asked = SlidingWindow(per_requester.count, per_requester.seconds, clock)  # used under _lock
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mail")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def post(self, compose: Compose, requester: Optional[str] = None) -> bool:
        """Queue ``compose`` and its sending; False (logged) when too many are waiting.

        ``requester`` (a conversation id) may cause only ``per_requester``
        mails in its window: otherwise one chat could go through the ticket
        keys and mail every owner, each address staying under its own quota.
        """
        with self._lock:
            if requester is not None and self._asked.wait(requester):
                logger.info("mail not queued: %s asked for too many mails", mask_sender(requester))
                return False
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
            logger.warning(
                "mail to %s about %s not sent: %s", mask_email(mail.to), mail.topic or "-", mask_contacts(str(exc))
            )
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
