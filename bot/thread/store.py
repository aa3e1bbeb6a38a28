"""The ticket thread: news from the help desk and the customer's answers, in order, each delivered once.

Both ways are an outbox like ticket delivery (bot/tickets/outbox_queue.py):
a message is stored first and delivered later by whoever claims it, so it
survives restarts of any process. Recording is idempotent on the news'
own id at its source, so a webhook retried, a poll that sees what a webhook
already brought, or a worker restarted mid-round never sends anything
twice. Per ticket, a message is handed out only when every earlier one of
the same direction is done: the customer reads them in the order the agent
wrote them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Iterable, Optional

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import aliased

from bot.sqlengine import as_utc
from bot.text import clean_text, normalize
from bot.thread.csat import open_question
from bot.thread.model import (
    COMMENT,
    CSAT,
    DELIVERED,
    DONE,
    FAILED,
    LOCAL,
    PENDING,
    SENDING,
    STATUS,
    TO_CUSTOMER,
    TO_DESK,
    ReplyTarget,
    ThreadMessage,
    TicketRef,
    Update,
)
from bot.thread.table import (
    ThreadError,
    ThreadRow,
    ThreadTables,
    encode_attachments,
    message_of,
    now,
)
from bot.tickets.model import Attachment

logger = logging.getLogger(__name__)

WEB_CHANNEL = "socketio"


def _due(moment: datetime) -> Any:
    """Rows a worker may take: pending and due, or held by a worker whose lease ran out."""
    return or_(
        and_(ThreadRow.delivery_status == PENDING, ThreadRow.next_attempt_at <= moment),
        and_(ThreadRow.delivery_status == SENDING, ThreadRow.claimed_until < moment),
    )


def _first_of_its_ticket() -> Any:
    """No earlier message of the same ticket and direction is still waiting: order per ticket."""
    earlier = aliased(ThreadRow)
    return ~exists().where(
        earlier.ticket_key == ThreadRow.ticket_key,
        earlier.direction == ThreadRow.direction,
        earlier.id < ThreadRow.id,
        earlier.delivery_status.in_((PENDING, SENDING)),
    )


class TicketThread:
    """The thread of every ticket in the tickets database at one URL."""

    def __init__(self, url: str) -> None:
        self.tables = ThreadTables(url)

    # ----------------------------------------------------------------- record
    def _insert(self, row: ThreadRow) -> Optional[ThreadMessage]:
        """Store one message; None when its (ticket, source) is already there."""
        try:
            with self.tables.begin() as session:
                session.add(row)
                session.flush()
                return message_of(row)
        except IntegrityError:
            return None
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo guardar el mensaje del ticket {row.ticket_key}: {exc}") from exc

    def _row(self, ticket: TicketRef, direction: str, kind: str, source: str, body: str, **values: Any) -> ThreadRow:
        """A new row; text from outside (JSM, the customer) cleaned of what a database or a log cannot take."""
        moment = now()
        for name, limit in (("author", 255), ("status_category", 50)):
            if values.get(name):
                values[name] = clean_text(values[name])[:limit] or None
        return ThreadRow(
            ticket_key=ticket.key,
            title=clean_text(ticket.title)[:300],
            source=clean_text(source)[:255],
            direction=direction,
            kind=kind,
            body=clean_text(body),
            conversation_id=ticket.conversation_id,
            channel=ticket.channel,
            created_at=moment,
            next_attempt_at=moment,
            attempts=0,
            **{"delivery_status": PENDING, **values},
        )

    def _status_source(self, ticket: TicketRef, news: Update) -> Optional[str]:
        """The canonical id of a status change, or None when it is no news.

        No news: the ticket already shows this status, or the change is older
        than the last one kept (a webhook retried late, a slow poll). The id
        derives from the thread itself (how many changes it holds), so the
        webhook and the poll reporting one change at the same time write the
        same id and the database keeps one.
        """
        query = (
            select(ThreadRow.body, ThreadRow.happened_at, ThreadRow.origin)
            .where(ThreadRow.ticket_key == ticket.key, ThreadRow.direction == TO_CUSTOMER, ThreadRow.kind == STATUS)
            .order_by(ThreadRow.id.desc())
        )
        try:
            with self.tables.session() as session:
                previous = list(session.execute(query).all())
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo leer el hilo del ticket {ticket.key}: {exc}") from exc
        if any(origin == clean_text(news.source)[:255] for _, _, origin in previous):
            return None  # this very report was kept before (a webhook retried)
        if previous:
            last_body, last_at, _ = previous[0]
            if normalize(last_body) == normalize(news.body):
                return None
            last_at = as_utc(last_at)
            if news.happened_at is not None and last_at is not None and as_utc(news.happened_at) < last_at:
                return None
        return f"status#{len(previous) + 1}:{normalize(news.body)}"

    def record(self, news: Update, ticket: TicketRef) -> list[ThreadMessage]:
        """Keep a piece of help-desk news for the customer; the new messages (none for news already kept).

        Internal comments are never kept for the customer. A resolved status
        also queues the satisfaction question, once per ticket.
        """
        if not news.public or not news.body.strip():
            return []
        source = news.source
        if news.kind == STATUS:
            canonical = self._status_source(ticket, news)
            if canonical is None:
                return []
            source = canonical
        row = self._row(
            ticket,
            TO_CUSTOMER,
            news.kind,
            source,
            news.body.strip(),
            author=news.author,
            origin=clean_text(news.source)[:255],
            happened_at=news.happened_at,
            status_category=(news.status_category or "").lower() or None,
        )
        created = self._insert(row)
        if created is None:
            return []
        kept = [created]
        if news.kind == STATUS and created.status_category == DONE:
            question = self._insert(self._row(ticket, TO_CUSTOMER, CSAT, f"csat:{ticket.key}", ticket.title))
            if question is not None:
                kept.append(question)
                open_question(self.tables, ticket)
        return kept

    def from_customer(
        self,
        ticket: TicketRef,
        text: str,
        *,
        source: str,
        attachments: Iterable[Attachment] = (),
        to_jsm: bool = False,
    ) -> ThreadMessage:
        """The customer's answer to the agent, for the help desk (JSM's public comment, or the local thread)."""
        return self._for_desk(ticket, COMMENT, text, source, to_jsm, tuple(attachments))

    def note_for_desk(self, ticket: TicketRef, kind: str, body: str, *, source: str, to_jsm: bool) -> ThreadMessage:
        """An internal note for the agents (a handoff with its transcript, a CSAT answer)."""
        return self._for_desk(ticket, kind, body, source, to_jsm, ())

    def _for_desk(
        self, ticket: TicketRef, kind: str, body: str, source: str, to_jsm: bool, attachments: tuple[Attachment, ...]
    ) -> ThreadMessage:
        row = self._row(
            ticket,
            TO_DESK,
            kind,
            source,
            body,
            attachments=encode_attachments(attachments),
            delivery_status=PENDING if to_jsm else LOCAL,
        )
        created = self._insert(row)
        if created is not None:
            return created
        existing = self._by_source(ticket.key, clean_text(source)[:255])
        if existing is None or existing.direction != TO_DESK or existing.kind != kind:
            raise ThreadError(f"conflicto al guardar el mensaje del ticket {ticket.key}: su origen ya está en uso")
        return existing

    def _by_source(self, ticket_key: str, source: str) -> Optional[ThreadMessage]:
        query = select(ThreadRow).where(ThreadRow.ticket_key == ticket_key, ThreadRow.source == source)
        return next(iter(self._select(query)), None)

    # ----------------------------------------------------------------- claim
    def claim_due(
        self,
        direction: str,
        worker: str,
        *,
        channels: Optional[Iterable[str]] = None,
        conversation_id: Optional[str] = None,
        limit: int = 20,
        lease_seconds: float = 60.0,
    ) -> list[ThreadMessage]:
        """Take due messages for ``worker``: the oldest waiting one of each ticket, never one to two workers."""
        moment = now()
        conditions = [ThreadRow.direction == direction, _due(moment)]
        if channels is not None:
            conditions.append(ThreadRow.channel.in_(list(channels)))
        if conversation_id is not None:
            conditions.append(ThreadRow.conversation_id == conversation_id)
        query = select(ThreadRow.id).where(*conditions, _first_of_its_ticket()).order_by(ThreadRow.id).limit(limit)
        if self.tables.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[ThreadMessage] = []
        try:
            with self.tables.begin() as session:
                for row_id in session.execute(query).scalars().all():
                    taken = session.execute(
                        update(ThreadRow)
                        .where(ThreadRow.id == row_id, _due(moment))
                        .values(
                            delivery_status=SENDING,
                            claimed_by=worker,
                            claimed_until=moment + timedelta(seconds=lease_seconds),
                            attempts=ThreadRow.attempts + 1,
                        )
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if taken == 1:
                        claimed.append(message_of(session.get(ThreadRow, row_id, populate_existing=True)))
        except OperationalError as exc:
            if "locked" in str(exc).lower():  # SQLite: another worker is claiming; next round
                return []
            raise ThreadError(f"no se pudieron reservar mensajes para entregar: {exc}") from exc
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudieron reservar mensajes para entregar: {exc}") from exc
        return claimed

    def claim_conversation(self, conversation_id: str, worker: str, lease_seconds: float = 30.0) -> list[ThreadMessage]:
        """The web relay's claim: the first waiting message of each ticket of one web conversation."""
        return self.claim_due(
            TO_CUSTOMER, worker, channels=(WEB_CHANNEL,), conversation_id=conversation_id, lease_seconds=lease_seconds
        )

    def _finish(self, message: ThreadMessage, worker: str, what: str, **values: Any) -> bool:
        statement = (
            update(ThreadRow)
            .where(ThreadRow.id == message.id, ThreadRow.claimed_by == worker, ThreadRow.delivery_status == SENDING)
            .values(claimed_by=None, claimed_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        try:
            with self.tables.begin() as session:
                return int(session.execute(statement).rowcount) == 1
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo {what}: {exc}") from exc

    def mark_delivered(self, message: ThreadMessage, worker: str, via: str) -> bool:
        values = {"delivery_status": DELIVERED, "delivered_at": now(), "via": via, "last_error": None}
        return self._finish(message, worker, "marcar el mensaje como entregado", **values)

    def mark_retry(self, message: ThreadMessage, worker: str, error: str, at: datetime) -> bool:
        values = {"delivery_status": PENDING, "next_attempt_at": at, "last_error": error[:4000]}
        return self._finish(message, worker, "programar el reintento del mensaje", **values)

    def mark_failed(self, message: ThreadMessage, worker: str, error: str) -> bool:
        values = {"delivery_status": FAILED, "next_attempt_at": None, "last_error": error[:4000]}
        return self._finish(message, worker, "marcar el mensaje como fallido", **values)

    def requeue(self, message_ids: Iterable[int] = (), *, failed: bool = False) -> int:
        """Queue failed (or named) messages again; how many."""
        conditions = []
        ids = list(message_ids)
        if ids:
            conditions.append(and_(ThreadRow.id.in_(ids), ThreadRow.delivery_status != SENDING))
        if failed:
            conditions.append(ThreadRow.delivery_status == FAILED)
        if not conditions:
            return 0
        statement = (
            update(ThreadRow)
            .where(or_(*conditions), ThreadRow.delivery_status != LOCAL)
            .values(delivery_status=PENDING, next_attempt_at=now(), last_error=None)
            .execution_options(synchronize_session=False)
        )
        try:
            with self.tables.begin() as session:
                return int(session.execute(statement).rowcount)
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo volver a poner en cola: {exc}") from exc

    # ------------------------------------------------------------------ read
    def _select(self, query: Any) -> list[ThreadMessage]:
        try:
            with self.tables.session() as session:
                return [message_of(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo leer el hilo de los tickets: {exc}") from exc

    def messages(self, ticket_key: str) -> list[ThreadMessage]:
        """A ticket's whole thread, oldest first."""
        return self._select(
            select(ThreadRow).where(ThreadRow.ticket_key == ticket_key.strip().upper()).order_by(ThreadRow.id)
        )

    def for_conversation(self, conversation_id: str, *, after_id: int = 0) -> list[ThreadMessage]:
        """Every message of a conversation's tickets, oldest first."""
        query = (
            select(ThreadRow)
            .where(ThreadRow.conversation_id == conversation_id, ThreadRow.id > after_id)
            .order_by(ThreadRow.id)
        )
        return self._select(query)

    def undelivered(self, limit: int = 100) -> list[ThreadMessage]:
        """Messages that failed or still wait, oldest first: what an operator looks at."""
        query = (
            select(ThreadRow)
            .where(ThreadRow.delivery_status.in_((PENDING, SENDING, FAILED)))
            .order_by(ThreadRow.id)
            .limit(limit)
        )
        return self._select(query)

    def reply_target(
        self, conversation_id: str, *, window: timedelta, waiting_statuses: Iterable[str]
    ) -> Optional[ReplyTarget]:
        """The ticket of this conversation whose agent waits for the customer, if any.

        A ticket waits when its latest status is one of ``waiting_statuses``
        («Esperando por el cliente»), or when an agent's comment reached the
        customer within ``window`` and the ticket is not resolved since.
        """
        waiting = {normalize(s) for s in waiting_statuses}
        query = (
            select(ThreadRow)
            .where(
                ThreadRow.conversation_id == conversation_id,
                ThreadRow.direction == TO_CUSTOMER,
                ThreadRow.kind.in_((COMMENT, STATUS)),
                # SENDING too: the customer may already read it while the sender records it.
                ThreadRow.delivery_status.in_((DELIVERED, SENDING)),
            )
            .order_by(ThreadRow.id.desc())
            .limit(200)
        )
        latest_status: dict[str, ThreadMessage] = {}
        latest_comment: dict[str, ThreadMessage] = {}
        for message in self._select(query):
            latest = latest_status if message.kind == STATUS else latest_comment
            latest.setdefault(message.ticket_key, message)
        horizon = now() - window
        candidates: list[ThreadMessage] = []
        for ticket_key in set(latest_status) | set(latest_comment):
            status = latest_status.get(ticket_key)
            comment = latest_comment.get(ticket_key)
            if status is not None and status.status_category == DONE:
                continue  # resolved: the CSAT question follows, not the agent
            if status is not None and normalize(status.body) in waiting:
                candidates.append(status if comment is None or comment.id < status.id else comment)
            elif comment is not None and (comment.delivered_at or comment.created_at) >= horizon:
                candidates.append(comment)
        if not candidates:
            return None
        newest = max(candidates, key=lambda m: m.id)
        _, _, request_type = newest.title.partition(" · ")
        return ReplyTarget(newest.ticket_key, request_type, newest.id)
