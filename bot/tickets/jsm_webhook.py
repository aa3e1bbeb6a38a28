"""JSM's webhook: an agent's public comment or a status change, verified and turned into news for the customer.

Jira Cloud's admin webhooks, registered with a secret, sign the raw request
body with HMAC-SHA256 keyed on that secret and send the hex digest in the
``X-Hub-Signature`` header as ``sha256=<hex>`` (the WebSub ``method=signature``
format). Without the right signature nothing is read: whoever could post
here unsigned could write to any customer's chat.

The signature covers the body, not the headers, so replays are stopped
twice: each delivery's ``X-Atlassian-Webhook-Identifier`` (unchanged across
Jira's retries) is remembered for some days in the tickets database, and a
body whose ``timestamp`` is older than the tolerance (shorter than that
memory) is refused. What is recorded is idempotent anyway (a comment by its
id, a status once and never older than the last one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

from sqlalchemy import Column, DateTime, String, delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import declarative_base, sessionmaker

from bot.sqlengine import SchemaOnce, shared_engine
from bot.thread import ThreadError, Update
from bot.thread.model import COMMENT
from bot.tickets.errors import JsmError, JsmRejected, TicketStoreError
from bot.tickets.jsm_news import JsmPeople, account_of, comment_update, epoch_millis, jira_time, status_update
from bot.tickets.updates import UpdateRecorder

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
# Jira retries for up to about 30 minutes; a day of tolerance, a week of memory.
TOLERANCE = timedelta(days=1)
FUTURE_SKEW = timedelta(minutes=5)
REMEMBER = timedelta(days=7)
MAX_BODY = 1024 * 1024  # Jira's issue events with long descriptions stay far below this
COMMENT_EVENTS = ("comment_created",)
ISSUE_UPDATED = "jira:issue_updated"

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time


class DeliveryRow(Base):
    __tablename__ = "jsm_webhook_deliveries"

    identifier = Column(String(255), primary_key=True)
    received_at = Column(DateTime(timezone=True), nullable=False, index=True)


class WebhookRefused(Exception):
    """The delivery is not one to record; ``status`` is the HTTP answer, the message says why (Spanish)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    """A header by any spelling: Sanic hands them in lower case, Jira documents them capitalised."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def signature_of(secret: str, body: bytes) -> str:
    """The header value Jira sends for ``body``: ``sha256=`` and the HMAC-SHA256 hex digest keyed on the secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: Optional[str]) -> bool:
    """Whether ``header`` is the signature of ``body``; constant-time, and never true without a secret."""
    if not secret or not header or not header.isascii():
        return False
    method, _, digest = header.strip().partition("=")
    if method.lower() != "sha256" or not digest:
        return False
    expected = signature_of(secret, body).encode("ascii")
    return hmac.compare_digest(expected, f"sha256={digest.lower()}".encode("ascii"))


class DeliveryLog:
    """The webhook deliveries already handled (by Jira's identifier), kept ``REMEMBER`` in the tickets database."""

    def __init__(self, url: str, remember: timedelta = REMEMBER) -> None:
        self.engine = shared_engine(url)
        self.remember = remember
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata)
        self._purged_at: Optional[datetime] = None

    def _ensure_schema(self) -> None:
        try:
            self._schema.ensure()
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo abrir el registro de webhooks: {exc}") from exc

    def first_time(self, identifier: str, now: Optional[datetime] = None) -> bool:
        """Remember ``identifier``; False when it was handled before (a replay or a retry of a handled one)."""
        self._ensure_schema()
        moment = now or datetime.now(timezone.utc)
        self._purge(moment)
        try:
            with self._sessions.begin() as session:
                session.add(DeliveryRow(identifier=identifier, received_at=moment))
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo registrar la entrega del webhook: {exc}") from exc

    def forget(self, identifier: str) -> None:
        """Let Jira's retry of a delivery that could not be handled be handled."""
        try:
            with self._sessions.begin() as session:
                session.execute(delete(DeliveryRow).where(DeliveryRow.identifier == identifier))
        except SQLAlchemyError:
            logger.exception("could not forget webhook delivery %s", identifier[:80])

    def _purge(self, moment: datetime) -> None:
        """Drop identifiers past their days, at most once an hour per process."""
        if self._purged_at is not None and moment - self._purged_at < timedelta(hours=1):
            return
        self._purged_at = moment
        try:
            with self._sessions.begin() as session:
                session.execute(delete(DeliveryRow).where(DeliveryRow.received_at < moment - self.remember))
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo limpiar el registro de webhooks: {exc}") from exc


@dataclass(frozen=True)
class Reported:
    """One piece of news a delivery carries, with who wrote it (comments only) for the echo check."""

    update: Update
    author: Any = None
    reporter: Optional[str] = None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _comment(payload: Mapping[str, Any], jsm_key: str, reporter: Optional[str]) -> list[Reported]:
    """A comment event's comment, if the customer can read it: ``jsdPublic`` true and no restricted visibility."""
    comment = _mapping(payload.get("comment"))
    comment_id = comment.get("id")
    if not isinstance(comment_id, (str, int)) or isinstance(comment_id, bool) or not str(comment_id).strip():
        raise WebhookRefused(400, "el comentario no trae su id")
    if comment.get("jsdPublic") is not True or comment.get("visibility"):
        return []  # an internal comment (or one restricted to a group or role): agents only
    happened = jira_time(comment.get("created")) or epoch_millis(payload.get("timestamp"))
    author = comment.get("author")
    update = comment_update(jsm_key, str(comment_id).strip()[:100], comment.get("body"), author, happened)
    return [Reported(update, author, reporter)]


def _status(payload: Mapping[str, Any], issue: Mapping[str, Any], jsm_key: str) -> list[Reported]:
    """The status change an issue update carries, if any: the new name and the issue's status category."""
    items = _mapping(payload.get("changelog")).get("items")
    if not isinstance(items, list):
        return []
    changes = [i for i in items if isinstance(i, Mapping) and (i.get("fieldId") or i.get("field")) == "status"]
    if not changes:
        return []
    name = changes[-1].get("toString")
    if not isinstance(name, str) or not name.strip():
        raise WebhookRefused(400, "el cambio de estado no trae el estado nuevo")
    status = _mapping(_mapping(issue.get("fields")).get("status"))
    category = _mapping(status.get("statusCategory")).get("key")
    happened = epoch_millis(payload.get("timestamp"))
    return [Reported(status_update(jsm_key, name, category if isinstance(category, str) else None, happened))]


def parse(payload: Any) -> list[Reported]:
    """The news a Jira webhook body carries; [] for events that are not news for customers.

    ``comment_created`` (and an issue update for a new comment) carries a
    comment; ``jira:issue_updated`` with a ``status`` change item carries
    a status. Raises ``WebhookRefused(400)`` for a body that is not Jira's.
    """
    if not isinstance(payload, Mapping):
        raise WebhookRefused(400, "el cuerpo no es un objeto JSON")
    event = payload.get("webhookEvent")
    issue = _mapping(payload.get("issue"))
    jsm_key = issue.get("key")
    if not isinstance(event, str):
        raise WebhookRefused(400, "falta webhookEvent")
    if event not in COMMENT_EVENTS and event != ISSUE_UPDATED:
        return []
    if not isinstance(jsm_key, str) or not jsm_key.strip():
        raise WebhookRefused(400, "falta la clave de la solicitud (issue.key)")
    jsm_key = jsm_key.strip()[:50]
    reporter = account_of(_mapping(issue.get("fields")).get("reporter"))
    if event in COMMENT_EVENTS:
        return _comment(payload, jsm_key, reporter)
    news = _status(payload, issue, jsm_key)
    if payload.get("issue_event_type_name") == "issue_commented" and isinstance(payload.get("comment"), Mapping):
        news += _comment(payload, jsm_key, reporter)
    return news


class JsmWebhook:
    """Handles one delivery of JSM's webhook: verify, refuse replays, parse, leave out echoes, record."""

    def __init__(
        self,
        secret: str,
        deliveries: DeliveryLog,
        recorder: UpdateRecorder,
        people: Optional[JsmPeople],
        *,
        tolerance: timedelta = TOLERANCE,
    ) -> None:
        """``people`` None: JSM cannot be asked who wrote a comment, so comment deliveries wait (503)."""
        self.secret = secret
        self.deliveries = deliveries
        self.recorder = recorder
        self.people = people
        self.tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Any:
        """The delivery's JSON once its signature and age are right; ``WebhookRefused`` otherwise."""
        if not signature_valid(self.secret, body, _header(headers, SIGNATURE_HEADER)):
            raise WebhookRefused(401, "firma ausente o inválida")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise WebhookRefused(400, "el cuerpo no es JSON") from None
        sent = epoch_millis(payload.get("timestamp")) if isinstance(payload, dict) else None
        if sent is None:
            raise WebhookRefused(400, "falta el timestamp del evento")
        now = datetime.now(timezone.utc)
        if sent < now - self.tolerance or sent > now + FUTURE_SKEW:
            raise WebhookRefused(400, "evento fuera de plazo: se rechaza para impedir repeticiones")
        return payload

    def handle(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Record what the delivery brings; how many thread messages are new.

        Raises ``WebhookRefused`` (401 signature, 400 malformed or stale,
        503 while the database or JSM cannot be reached: Jira retries).
        """
        payload = self.verify(body, headers)
        reported = parse(payload)
        identifier = (_header(headers, IDENTIFIER_HEADER) or "").strip()
        if not identifier or len(identifier) > 255:
            raise WebhookRefused(400, f"falta {IDENTIFIER_HEADER}")
        try:
            if not self.deliveries.first_time(identifier):
                logger.info("JSM webhook delivery %s already handled", identifier[:80])
                return 0
            return self._record(identifier, reported)
        except (TicketStoreError, ThreadError) as exc:
            logger.error("JSM webhook: %s", exc)
            raise WebhookRefused(503, "la base de datos no está disponible; reintenta más tarde") from exc

    def _record(self, identifier: str, reported: list[Reported]) -> int:
        try:
            ours = [r for r in reported if self.recorder.resolve(r.update) is not None]
            if len(ours) < len(reported):
                logger.info("JSM webhook: news about a request the assistant did not create; ignored")
            news = [r.update for r in ours if not self._echo(r)]
            return sum(len(self.recorder.record(update)) for update in news)
        except (JsmError, TicketStoreError, ThreadError) as exc:
            self.deliveries.forget(identifier)
            if isinstance(exc, JsmError):
                logger.warning("JSM webhook: could not tell who wrote a comment: %s", exc)
                raise WebhookRefused(503, "no se pudo consultar JSM; reintenta más tarde") from exc
            raise

    def _echo(self, reported: Reported) -> bool:
        """Whether a comment is the customer's or ours; raises ``JsmError`` while JSM cannot tell (503)."""
        update = reported.update
        if update.kind != COMMENT:
            return False
        if self.people is None:
            raise JsmError("JSM no está configurado: no se puede saber quién escribió el comentario")
        try:
            return self.people.is_echo(update.ticket, reported.author, update.body, reported.reporter)
        except JsmRejected as exc:  # the request is gone or hidden from us: nothing to tell the customer
            logger.warning("JSM webhook: %s: %s; comment not recorded", update.ticket, exc)
            return True
