"""The thread's tables in the tickets database: messages after the ticket, and CSAT answers.

Their own declarative base, created on first use like the tickets table, so
the thread room needs nothing from the tickets room but the URL.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, ContextManager

from sqlalchemy import Column, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from bot.sqlengine import SchemaOnce, as_utc, shared_engine
from bot.thread.model import CsatAnswer, ThreadMessage
from bot.tickets.model import Attachment

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time


class ThreadError(RuntimeError):
    """The thread's database failed; the message says what could not be done (Spanish)."""


class ThreadRow(Base):
    __tablename__ = "ticket_thread"

    id = Column(Integer, primary_key=True, autoincrement=True)
    ticket_key = Column(String(32), nullable=False, index=True)
    title = Column(String(300), nullable=False, default="")  # «ECO-000123 · Falla en …», as the customer reads it
    source = Column(String(255), nullable=False)
    origin = Column(String(255))  # the news' own id at its source, when ``source`` is canonical (statuses)
    direction = Column(String(20), nullable=False)
    kind = Column(String(20), nullable=False)
    body = Column(Text, nullable=False, default="")
    author = Column(String(255))
    happened_at = Column(DateTime(timezone=True))
    status_category = Column(String(50))
    attachments = Column(Text, nullable=False, default="[]")
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(50), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    delivery_status = Column(String(20), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime(timezone=True))
    claimed_by = Column(String(100))
    claimed_until = Column(DateTime(timezone=True))
    delivered_at = Column(DateTime(timezone=True))
    via = Column(String(30))
    last_error = Column(Text)

    __table_args__ = (
        UniqueConstraint("ticket_key", "source", name="uq_ticket_thread_source"),
        Index("ix_ticket_thread_due", "direction", "delivery_status", "next_attempt_at"),
    )


class CsatRow(Base):
    __tablename__ = "csat_answers"

    id = Column(Integer, primary_key=True, autoincrement=True)
    ticket_key = Column(String(32), nullable=False, unique=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(50), nullable=False)
    request_type_id = Column(String(100), nullable=False)
    request_type = Column(String(255), nullable=False)
    asked_at = Column(DateTime(timezone=True), nullable=False)
    rating = Column(Integer)
    comment = Column(Text)
    answered_at = Column(DateTime(timezone=True))


def now() -> datetime:
    return datetime.now(timezone.utc)


def encode_attachments(items: tuple[Attachment, ...]) -> str:
    return json.dumps([asdict(a) for a in items], ensure_ascii=False)


def message_of(row: ThreadRow) -> ThreadMessage:
    return ThreadMessage(
        id=int(row.id),
        ticket_key=row.ticket_key,
        title=row.title or row.ticket_key,
        direction=row.direction,
        kind=row.kind,
        source=row.source,
        body=row.body or "",
        conversation_id=row.conversation_id,
        channel=row.channel,
        created_at=as_utc(row.created_at),
        author=row.author,
        happened_at=as_utc(row.happened_at),
        status_category=row.status_category,
        attachments=tuple(Attachment.from_dict(a) for a in json.loads(row.attachments or "[]")),
        delivery_status=row.delivery_status,
        attempts=int(row.attempts or 0),
        next_attempt_at=as_utc(row.next_attempt_at),
        delivered_at=as_utc(row.delivered_at),
        via=row.via,
        last_error=row.last_error,
    )


def answer_of(row: CsatRow) -> CsatAnswer:
    return CsatAnswer(
        ticket_key=row.ticket_key,
        conversation_id=row.conversation_id,
        channel=row.channel,
        request_type_id=row.request_type_id,
        request_type=row.request_type,
        asked_at=as_utc(row.asked_at),
        rating=row.rating,
        comment=row.comment,
        answered_at=as_utc(row.answered_at),
    )


class ThreadTables:
    """Sessions on the thread's tables at one URL; the schema is created on first use, once per object."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata)

    def _ensure_schema(self) -> None:
        try:
            self._schema.ensure()
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo abrir el hilo de los tickets: {exc}") from exc

    def session(self) -> Session:
        self._ensure_schema()
        return self._sessions()

    def begin(self) -> ContextManager[Session]:
        self._ensure_schema()
        return self._sessions.begin()
